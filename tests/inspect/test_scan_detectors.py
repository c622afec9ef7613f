"""What `scan` finds, on both implementations (`scan_impl`): every detector of the catalogue, context
rules, priority between detectors, credentials, markings and health terms, offsets."""

from __future__ import annotations

import pytest

from gateway.inspect.detectors import BY_ID, DETECTORS


def found(scan, text: str) -> list[tuple[str, str]]:
    return [(f.detector, text[f.start:f.end]) for f in scan(text)]


# detector, text, the value it must report (exactly, as written)
CASES = [
    ("br.cpf", "Meu CPF é 529.982.247-25.", "529.982.247-25"),
    ("br.cpf", "cpf 52998224725", "52998224725"),
    ("br.cnpj", "CNPJ 11.222.333/0001-81", "11.222.333/0001-81"),
    ("br.cnpj", "a empresa 12.ABC.345/01DE-35 (novo formato)", "12.ABC.345/01DE-35"),
    ("br.cnpj", "12ABC34501DE35", "12ABC34501DE35"),
    ("br.cns", "cartão SUS 868 4076 1790 6451", "868 4076 1790 6451"),
    ("br.titulo", "título 1023 8501 0671", "1023 8501 0671"),
    ("br.pis", "PIS 241.40554.17-0", "241.40554.17-0"),
    ("br.rg", "RG 12.345.678-9 emitido pela SSP", "12.345.678-9"),
    ("mx.curp", "CURP: BOXW310820HNERXN09", "BOXW310820HNERXN09"),
    ("mx.rfc", "RFC GODE561231GR8", "GODE561231GR8"),
    ("br.cnh", "CNH 23932985059", "23932985059"),
    ("mx.nss", "NSS 12345678903", "12345678903"),
    ("mx.clabe", "CLABE 032180000118359719", "032180000118359719"),
    ("mx.ine", "clave de elector GMVLMR80070501M100", "GMVLMR80070501M100"),
    ("ar.cuit", "CUIT 20-26756539-3", "20-26756539-3"),
    ("ar.dni", "DNI 26.756.539", "26.756.539"),
    ("cl.rut", "RUT 12.531.909-2", "12.531.909-2"),
    ("co.nit", "NIT 213.123.432-1", "213.123.432-1"),
    ("co.cc", "cédula de ciudadanía 1.020.304.050", "1.020.304.050"),
    ("pe.ruc", "RUC 20512333797", "20512333797"),
    ("pe.dni", "RENIEC 45678912, Lima", "45678912"),
    ("ec.ci", "cédula 1714307103", "1714307103"),
    ("ec.ruc", "RUC 1790011674001", "1790011674001"),
    ("uy.rut", "RUT 211003420017", "211003420017"),
    ("uy.ci", "C.I. 1.911.936-5", "1.911.936-5"),
    ("py.ruc", "RUC 80012345-0", None),
    ("py.ci", "C.I. 123.456", "123.456"),
    ("bo.ci", "SEGIP 45678", "45678"),
    ("ve.rif", "RIF V-11470283-4", "V-11470283-4"),
    ("ve.cedula", "SAIME cédula V-12345678", "V-12345678"),
    ("cr.cedula", "DIMEX cédula 1-1234-5678", "1-1234-5678"),
    ("gt.cui", "DPI 2937 44815 0101", "2937 44815 0101"),
    ("do.cedula", "JCE 001-1234567-3", "001-1234567-3"),
    ("pa.cedula", "Tribunal Electoral: 8-123-456", "8-123-456"),
    ("cu.ni", "carné de identidad 85031512345", "85031512345"),
    ("us.ssn", "SSN 536-22-5435", "536-22-5435"),
    ("us.itin", "ITIN 912-70-1234", "912-70-1234"),
    ("us.ein", "EIN 12-3456789", "12-3456789"),
    ("ca.sin", "SIN 130 692 544", "130 692 544"),
    ("intl.email", "escreva para ana.silva@gov.br.", "ana.silva@gov.br"),
    ("intl.phone", "ligue +55 11 91234-5678 hoje", "+55 11 91234-5678"),
    ("intl.phone", "tel. (11) 3456-7890", "(11) 3456-7890"),
    ("intl.phone", "call +1 (415) 555-0100", "+1 (415) 555-0100"),
    ("intl.phone", "teléfono 55 1234 5678", "55 1234 5678"),
    ("intl.card", "cartão 4111 1111 1111 1111 val 12/30", "4111 1111 1111 1111"),
    ("intl.card", "amex 3782 822463 10005", "3782 822463 10005"),
    ("intl.iban", "IBAN GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"),
    ("intl.iban", "IBAN DE89370400440532013000", "DE89370400440532013000"),
    ("intl.ip", "servidor 192.168.10.1 caiu", "192.168.10.1"),
    ("intl.ip", "host 2001:db8::8a2e:370:7334.", "2001:db8::8a2e:370:7334"),
    ("secret.api_key", "key=sk-proj-abcdefghijklmnopqrstuvwxyz0123", "sk-proj-abcdefghijklmnopqrstuvwxyz0123"),
    ("secret.api_key", "x-api-key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
    ("secret.api_key", "aws AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
    ("secret.api_key", "token ghp_" + "a1B2" * 9, "ghp_" + "a1B2" * 9),
    ("secret.api_key", "AIza" + "SyA-1234567890abcdefghijklmnopqrstu", "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"),
    ("secret.api_key", "slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("secret.api_key", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("secret.jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),
    ("secret.private_key", "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n",
     "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----"),
    ("secret.password", "DATABASE_URL=postgres://app:Sup3r-s3cret@db.internal:5432/x", "Sup3r-s3cret"),
    ("secret.password", "Server=db;User Id=sa;Password=Hunter2!;", "Hunter2!"),
    ("secret.password", '{"password": "correct horse"}', "correct horse"),
    ("gov.marking", "SECRETO — Ministério da Defesa", "SECRETO"),
    ("gov.marking", "Classificação: reservado", "reservado"),
    ("gov.marking", "clasificación: Secreto", "Secreto"),
    ("gov.marking", "TOP SECRET//NOFORN", "TOP SECRET"),
    ("gov.marking", "TRÈS SECRET DÉFENSE", "TRÈS SECRET DÉFENSE"),
    ("gov.marking", "Documento ULTRASSECRETO", "ULTRASSECRETO"),
    ("health.term", "paciente com diabetes", "diabetes"),
    ("health.term", "patient living with HIV", "HIV"),
    ("health.term", "diagnóstico CID E11.9", "E11.9"),
    ("health.term", "sous chimiothérapie", "chimiothérapie"),
    ("health.term", "tratamiento con metformina", "metformina"),
    ("health.term", "trastorno bipolar tipo I", "trastorno bipolar"),
]


@pytest.mark.parametrize("detector,text,value", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_detector_finds_its_value(scan_impl, detector, text, value):
    got = found(scan_impl, text)
    assert any(d == detector for d, _ in got), got
    if value is not None:
        assert (detector, value) in got


def test_every_detector_has_a_case():
    covered = {c[0] for c in CASES}
    assert covered == {d.id for d in DETECTORS}


def test_categories_and_countries():
    f = {d.id: d for d in DETECTORS}
    assert (f["br.cpf"].category, f["br.cpf"].country) == ("national_id", "BR")
    assert (f["br.cnpj"].category, f["mx.rfc"].category) == ("tax_id", "tax_id")
    assert f["br.cns"].category == "health_id"
    assert f["intl.card"].country is None and f["intl.card"].category == "financial"
    assert f["secret.jwt"].category == "credentials" and f["gov.marking"].category == "gov_classified"
    assert f["health.term"].category == "health" and f["intl.ip"].category == "network"
    categories = {"national_id", "tax_id", "health_id", "contact", "financial", "credentials",
                  "gov_classified", "health", "network"}
    for d in DETECTORS:
        assert d.category in categories
        assert d.country is None or (len(d.country) == 2 and d.country.isupper())
        assert d.country is None if d.id.split(".")[0] in ("intl", "secret", "gov", "health") \
            else d.country == d.id[:2].upper()


def test_finding_fields(scan_impl):
    text = "CPF 529.982.247-25"
    (f,) = scan_impl(text)
    assert f == ("br.cpf", "national_id", "BR", 4, 18)


# ------------------------------------------------------------------------ check digits and context

@pytest.mark.parametrize("text", [
    "CPF 529.982.247-26", "CNPJ 11.222.333/0001-82", "CURP BOXW310820HNERXN08", "RUT 12.531.909-3",
    "CUIT 20-26756539-4", "cartão 4111 1111 1111 1112", "IBAN GB82 WEST 1234 5698 7654 33",
    "CPF 111.111.111-11", "CPF 000.000.000-00", "CNPJ 00.000.000/0000-00",
])
def test_failing_check_digit_is_not_reported(scan_impl, text):
    assert scan_impl(text) == []


@pytest.mark.parametrize("with_word,without", [
    ("DNI 26.756.539", "lote 26.756.539"),
    ("RG 12.345.678-9", "ref 12.345.678-9"),
    ("cédula 1.020.304.050", "total 1.020.304.050"),
    ("clave de elector GMVLMR80070501M100", "código GMVLMR80070501M100"),
    ("SIN 130692544", "pedido 130692544"),
    ("tel 3456-7890", "lote 3456-7890"),
    ("carné de identidad 85031512345", "nota 85031512345"),
])
def test_context_required_detectors_need_the_word(scan_impl, with_word, without):
    assert scan_impl(with_word)
    assert scan_impl(without) == []


def test_context_must_be_near_and_before(scan_impl):
    assert scan_impl("DNI: " + "x" * 10 + " 26.756.539")
    assert scan_impl("DNI" + " " * 50 + "26.756.539") == []
    assert scan_impl("26.756.539 DNI") == []


def test_formatted_value_needs_no_context_but_compact_weak_one_does(scan_impl):
    assert found(scan_impl, "12.531.909-2") == [("cl.rut", "12.531.909-2")]
    assert found(scan_impl, "125319092") == []
    assert found(scan_impl, "RUT 125319092") == [("cl.rut", "125319092")]


def test_context_word_decides_between_countries(scan_impl):
    # the same 11 digits are a valid CUIT and a valid Peruvian RUC (same weights)
    value = "20512333797"
    assert found(scan_impl, f"CUIT {value}") == [("ar.cuit", value)]
    assert found(scan_impl, f"RUC {value}") == [("pe.ruc", value)]


def test_values_glued_to_letters_or_digits_are_not_cut_out(scan_impl):
    assert scan_impl("X52998224725") == []
    assert scan_impl("152998224725") == []
    assert scan_impl("5299822472512345") == [] or all(
        f.detector != "br.cpf" for f in scan_impl("5299822472512345"))


def test_ordinary_words_are_not_markings(scan_impl):
    assert scan_impl("o segredo é secreto e a reunião é reservada") == []
    assert scan_impl("Es un secreto a voces.") == []
    assert scan_impl("the secret sauce") == []


def test_icd10_needs_health_context(scan_impl):
    assert found(scan_impl, "CID F32.1") == [("health.term", "F32.1")]
    assert scan_impl("modelo E11 da linha") == []


def test_credentials_win_overlaps(scan_impl):
    text = "postgres://user:pa55word@db.example.com/app"
    assert found(scan_impl, text) == [("secret.password", "pa55word")]


def test_email_with_unicode_local_part(scan_impl):
    assert found(scan_impl, "joão.silva@prefeitura.sp.gov.br") == [
        ("intl.email", "joão.silva@prefeitura.sp.gov.br")]


def test_not_ip_or_email(scan_impl):
    assert scan_impl("versão 1.2.3.4567 e 12:30:45, user@localhost, a@b.c") == []
    assert scan_impl("999.168.0.1") == []


def test_private_key_without_end_runs_to_the_end(scan_impl):
    text = "see -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE..."
    (f,) = scan_impl(text)
    assert f.detector == "secret.private_key" and f.end == len(text)


def test_several_values_in_one_text(scan_impl):
    text = ("Cliente: Ana, CPF 529.982.247-25, e-mail ana@gov.br, tel +55 11 91234-5678, "
            "CURP BOXW310820HNERXN09, cartão 4111-1111-1111-1111.")
    assert [d for d, _ in found(scan_impl, text)] == [
        "br.cpf", "intl.email", "intl.phone", "mx.curp", "intl.card"]


def test_labels_exist_for_placeholders():
    for d in DETECTORS:
        assert d.label and d.label.isupper() and " " not in d.label
    assert BY_ID["br.cpf"].label == "CPF" and BY_ID["intl.card"].label == "CARD"


def test_ordinary_text_with_numbers_has_no_identifiers(scan_impl):
    # prose, dates, times, amounts, order numbers, addresses, URLs in nine locales
    import random

    import generators as G

    rng = random.Random(3)
    hits = []
    for loc in ("pt_BR", "es_MX", "es_AR", "es_CO", "es_CL", "es_ES", "en_US", "fr_FR", "fr_CA"):
        for _ in range(25):
            f = G.faker(loc, rng)
            text = " ".join([
                f.paragraph(), f.date(), f.time(), f"R$ {rng.randrange(10**6) / 100:,.2f}",
                str(rng.randrange(10**9)), f.address(), f.iso8601(), f"pedido nº {rng.randrange(10**8)}",
                f.company(), f"{rng.randrange(1, 31)}/{rng.randrange(1, 13)}/{rng.randrange(1990, 2030)}",
                f.url(), f.sentence()])
            hits += [(f2.detector, text[f2.start:f2.end]) for f2 in scan_impl(text)
                     if f2.category in ("national_id", "tax_id", "health_id", "financial")]
    # a random 9-11 digit number passes a mod-11 check now and then; it must stay rare
    assert len(hits) <= 3, hits


def test_words_inside_identifiers_are_not_terms(scan_impl):
    assert [f.detector for f in scan_impl("CLIENT_SECRET=abcd1234 TOP_SECRET_FLAG HIV_TEST")] == [
        "secret.password"]
    assert [f.detector for f in scan_impl("status: SECRET")] == ["gov.marking"]


def test_ambiguous_health_abbreviations_count_in_capitals_only(scan_impl):
    assert found(scan_impl, "paciente com AIDS") == [("health.term", "AIDS")]
    assert scan_impl("this tool aids the reader; lithium battery") == []


@pytest.mark.parametrize("text,detector", [
    ("numéro d’assurance sociale 130 692 544", "ca.sin"),          # fr, typographic apostrophe
    ("NAS : 130692544", "ca.sin"),
    ("Número de Seguridad Social: 12345678903", "mx.nss"),          # es
    ("Carteira Nacional de Habilitação 23932985059", "br.cnh"),     # pt
    ("Social Security Number 536225435", "us.ssn"),                 # en
    ("niveau de classification : Très Secret", "gov.marking"),     # fr label, any case
    ("Grau de sigilo: ultrassecreto", "gov.marking"),              # pt label
    ("Classification: Top Secret", "gov.marking"),                 # en label
    ("nivel de clasificación - reservado", "gov.marking"),         # es label
])
def test_context_in_four_languages(scan_impl, text, detector):
    assert [f.detector for f in scan_impl(text)] == [detector]


@pytest.mark.parametrize("digit", "0123456789")
def test_repeated_digits_are_never_values(scan_impl, digit):
    for layout in ("{0}{0}{0}.{0}{0}{0}.{0}{0}{0}-{0}{0}", "{0}" * 16, "+" + "{0}" * 12,
                   "{0}{0}-{0}{0}{0}{0}{0}{0}{0}{0}-{0}", "{0}" * 9):
        text = "CPF CUIT SSN SIN tel cartão " + layout.format(digit)
        assert scan_impl(text) == [], text
