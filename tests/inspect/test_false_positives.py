"""Ordinary text that is not sensitive is not reported, on both implementations.

A corpus of everyday traffic in each language the inspector reads (es, pt, en, fr): prices, dates,
times, versions, order and invoice numbers, ISBNs, UUIDs, hashes, timestamps, stack traces, JSON logs,
SQL, tables of numbers and legal citations. A finding here would mangle (pseudonymize) or block a
request that carries no personal data. Numbers are chosen so that none happens to pass a check digit
of the catalogue (a check-digit-valid number may rightly be reported without context, SPEC section 6):
what is tested is that words and shapes of ordinary text are not taken for context or identifiers.
"""

from __future__ import annotations

import pytest

CORPUS: dict[str, list[str]] = {
    "en": [
        "The total is $1,299.99 plus tax; order #4412-9981-2231 ships on 2025-03-14 at 14:32:07 UTC.",
        "Version 3.11.4 of the package, build 20250314.1, released 2024-12-01T09:15:30.123Z.",
        "ISBN 978-3-16-148410-0 and ISBN-10 0-306-40615-2 are on the reading list.",
        "Request id 550e8400-e29b-41d4-a716-446655440000 took 123 ms; commit "
        "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3.",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        'Traceback (most recent call last):\n  File "/usr/lib/python3.11/site-packages/app/main.py", '
        'line 1234, in handler\n    raise ValueError("bad")\nValueError: bad',
        '{"level":"info","ts":1718031234.567,"msg":"request done","status":200,"bytes":48213,'
        '"latency_ms":12.5,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}',
        "SELECT id, total FROM orders WHERE created_at > '2024-01-01' AND customer_id = 12345678 "
        "LIMIT 100 OFFSET 2000;",
        "| Region | Q1 | Q2 | Q3 |\n| North | 1234567 | 2345678 | 3456789 |\n"
        "| South | 98765432 | 87654321 | 76543210 |",
        "Unix timestamp 1700000000 corresponds to Nov 14 2023; epoch ms 1700000000000.",
        "Call the function with retries=3, timeout=30000, port 8080, pid 45678.",
        "Our revenue grew from 12,345,678 to 23,456,789 dollars between 2019 and 2023.",
        "The tracking number is 1Z999AA10123456784 and the invoice INV-2024-000123.",
        "Population of the city: 8,336,817 (2020 census), area 783.8 km2.",
        "Coordinates 40.7128, -74.0060; elevation 10 m.",
        "Build 1.2.840.113549.1.1.11 is the OID for sha256WithRSAEncryption.",
        "at com.example.service.OrderService.process(OrderService.java:142)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:833)",
        "MAC address 00:1A:2B:3C:4D:5E and port 443.",
        "The meeting is on 12/03/2025 at 10:30; room 4012.",
        "Section 230 of title 47, 42 U.S.C. 1983, and Rule 12(b)(6).",
        # "code" is not a diagnosis: device and program error codes look like ICD-10 codes
        "The dishwasher shows error code E11 and stops.",
        "Process exited with status code E42; see the log.",
        "Fix the lint warning (code W29) before merging.",
        # "stroke" is how SVG, CSS and canvas draw lines: code, not a diagnosis
        '<path d="M0 0L10 10" stroke="black" stroke-width="2" fill="none"/>',
        ".icon { stroke: currentColor; stroke-linecap: round; }",
        "ctx.beginPath(); ctx.moveTo(0, 0); ctx.lineTo(10, 10); ctx.stroke();",
        "Mind every key stroke: a two-stroke engine, a brush stroke, a stroke of luck.",
        # "ss" is the seconds of a time format, not a social security number
        'date format "yyyy-MM-dd HH:mm:ss", parsing took 410217341 ns',
    ],
    "es": [
        "El precio es de $1.299,99 MXN con IVA; pedido n.º 2024-118833 del 14/03/2025 a las 14:32.",
        "Versión 2.4.10 del sistema, compilación 20250314, publicada el 01/12/2024.",
        "Según el art. 33 de la Ley 1581 de 2012 y el Decreto 1377 de 2013, artículo 26.",
        "La Ley 25.326 y la Disposición 60-E/2016; Resolución 198/2023.",
        "El PIB creció 3,2 % en 2023, hasta 1.234.567.890 pesos.",
        "Factura 001-002-000012345 emitida el 15/07/2024 por 12.500,00 USD.",
        "Tabla de ventas:\nenero 1234567 | febrero 2345678 | marzo 3456789",
        "El expediente 1234/2023 del juzgado 15 se resolvió el 3 de mayo.",
        "Hora de inicio 08:00, fin 17:30, duración 9 h 30 min.",
        "Ley 21.719 publicada el 13 de diciembre de 2024, vigente desde el 1 de diciembre de 2026.",
        "Código postal 28013, Madrid; kilómetro 12,5 de la autopista.",
        "Se vendieron 15.432.198 unidades en 2022 y 16.789.234 en 2023.",
        "El servidor respondió con código 503 tras 30000 ms; reintento 3 de 5.",
        "Decreto Supremo 016-2024-JUS, Ley 29733, Reglamento vigente desde el 30 de marzo de 2025.",
        "El horno muestra el código E11 y se apaga.",
        "Véanse los artículos 12 y ss. del expediente 113368538.",
        "Adjunto el documento 19839940 con el contrato firmado.",
        # "ni" is the Spanish "nor", not the Cuban número de identidad
        "No recibimos el pago ni la factura 73031979927 de marzo.",
    ],
    "pt": [
        "O preço é R$ 1.299,99 à vista; pedido nº 2024-118833 de 14/03/2025 às 14h32.",
        "Lei 13.709/2018, art. 33 a 36; Resolução CD/ANPD 19/2024; Decreto 10.977/2022.",
        "Lei 12.527/2011, art. 24, § 1º, inciso I.",
        "A versão 5.10.3 foi lançada em 01/12/2024; build 20241201.",
        "Processo nº 0001234-56.2023.8.26.0100 em tramitação na 3ª Vara Cível.",
        "O faturamento passou de R$ 12.345.678,90 para R$ 23.456.789,01.",
        "Nota fiscal 000.123.456 série 1, emitida em 15/07/2024.",
        "CEP 01310-100, Av. Paulista, 1578, São Paulo.",
        "Tabela:\n2021 | 1.234.567\n2022 | 2.345.678\n2023 | 3.456.789",
        "Horário de funcionamento: 08:00 às 18:00, segunda a sexta.",
        "Medida Provisória 1.234/2024 e Emenda Constitucional 132/2023.",
        "Resolução CD/ANPD 32, de 26 de janeiro de 2026.",
        # "e ss." (e seguintes) in a legal citation
        "Nos termos dos arts. 33 e ss. da Lei 13.709/2018, processo 113368538.",
        "O ar-condicionado exibe o código E11 no visor.",
        # the number of a document in the federal government's SEI system is no Argentine DNI
        "Conforme o Documento SEI nº 19839940, segue o documento 58450407 em anexo.",
    ],
    "fr": [
        "Le prix est de 1 299,99 € TTC ; commande n° 2024-118833 du 14/03/2025 à 14 h 32.",
        "Version 4.2.1 du logiciel, publiée le 01/12/2024, build 20241201.",
        "Article L. 1111-8 du Code de la santé publique ; article 44 de la loi n° 78-17 du 6 janvier 1978.",
        "Le chiffre d'affaires est passé de 12 345 678 € à 23 456 789 €.",
        "Décret n° 2019-536 du 29 mai 2019 ; règlement (UE) 2016/679, article 45.",
        "Facture F-2024-000123 réglée le 15/07/2024.",
        "Horaires : 08:00-18:00 du lundi au vendredi.",
        "Tableau :\n2021 ; 1 234 567\n2022 ; 2 345 678\n2023 ; 3 456 789",
        "Code postal 75008 Paris ; 12 rue de la Paix.",
        "Le serveur a répondu 503 après 30 000 ms.",
        "Le lave-linge affiche le code E11 : vérifiez l'arrivée d'eau.",
    ],
}


@pytest.mark.parametrize("lang", sorted(CORPUS))
def test_ordinary_text_has_no_findings(scan_impl, lang):
    found = {t: [(f.detector, t[f.start:f.end]) for f in scan_impl(t)] for t in CORPUS[lang]}
    assert {t: fs for t, fs in found.items() if fs} == {}


def test_a_diagnosis_code_is_still_found(scan_impl):
    # the words that do mean a diagnosis still make an ICD-10 code health data
    for text in ("CID-10 E11.9", "diagnóstico E11", "ICD code E11.9", "código CIE E11"):
        assert [f.detector for f in scan_impl(text)] == ["health.term"], text


def test_a_stroke_is_still_health_data(scan_impl):
    for text in ("The patient had a stroke in 2019.", "ischemic stroke, left side", "she suffered a stroke",
                 "admitted to the stroke unit"):
        assert [f.detector for f in scan_impl(text)] == ["health.term"], text


def test_a_social_security_number_is_still_found(scan_impl):
    for text in ("SSN 410217341", "social security number: 410217341"):
        assert [f.detector for f in scan_impl(text)] == ["us.ssn"], text


def test_an_identity_document_number_is_still_found(scan_impl):
    for text, detector in (("DNI 26.756.539", "ar.dni"), ("Número de documento: 26.756.539", "ar.dni"),
                           ("N° de documento 26756539", "ar.dni"), ("número de documento 19119365", "uy.ci"),
                           ("carné de identidad 73031979927", "cu.ni")):
        assert [f.detector for f in scan_impl(text)] == [detector], text
