"""gateway.inspect.texts: a request's texts inspected together, so a value split across JSON fields or
turns is found (REFERENCE, evasion forms); both implementations."""

from __future__ import annotations

from gateway.inspect.texts import JOINT_CONTEXT, scan_texts
from gateway.transform.pseudonymize import normalize_value

CPF = "529.982.247-25"


def _values(texts, per):
    return [[(f.detector, t[f.start:f.end]) for f in found] for t, found in zip(texts, per)]


def test_a_cpf_split_between_two_texts_is_found_in_both(scan_impl):
    texts = ["Resuma em uma frase.", "meu CPF: 529.982.", "247-25, obrigado"]
    per, split = scan_texts(texts, scan_impl)
    assert _values(texts, per) == [[], [("br.cpf", "529.982.")], [("br.cpf", "247-25")]]
    assert split == [("br.cpf", CPF)]
    # every piece alone is nothing: the joint found it
    assert scan_impl(texts[1]) == [] and scan_impl(texts[2]) == []


def test_an_email_and_a_key_cut_mid_token_are_found(scan_impl):
    texts = ["escreva para ana.souza@", "example.gov.br", "chave sk-proj-abcdEFGH1234", "ijklMNOP5678qrstUVWX9012yz"]
    per, split = scan_texts(texts, scan_impl)
    assert [d for d, _ in split] == ["intl.email", "secret.api_key"]
    assert normalize_value("intl.email", split[0][1]) == normalize_value("intl.email", "ana.souza@example.gov.br")
    assert _values(texts, per)[3] == [("secret.api_key", "ijklMNOP5678qrstUVWX9012yz")]


def test_texts_not_inspected_between_two_parts_do_not_separate_them(scan_impl):
    texts = ["CPF 529.982.", "", "", "247-25"]  # e.g. an image part between two text parts
    per, split = scan_texts(texts, scan_impl)
    assert [len(p) for p in per] == [1, 0, 0, 1] and split == [("br.cpf", CPF)]


def test_values_inside_one_text_are_found_once_and_where_they_are(scan_impl):
    # a whole CPF at the end of one text and a digit at the start of the next: the joint adds nothing
    texts = [f"CPF {CPF}", "1 item, e-mail ana@example.org"]
    per, split = scan_texts(texts, scan_impl)
    assert per == [scan_impl(t) for t in texts] and split == []
    assert _values(texts, per) == [[("br.cpf", CPF)], [("intl.email", "ana@example.org")]]


def test_the_joint_reads_only_the_ends_of_long_texts(scan_impl):
    far = f"CPF {CPF} " + "x" * JOINT_CONTEXT  # found in its own text, out of the joint's reach
    texts = [far, "e o outro: 111.444.", "777-35"]
    per, split = scan_texts(texts, scan_impl)
    assert _values(texts, per) == [[("br.cpf", CPF)], [("br.cpf", "111.444.")], [("br.cpf", "777-35")]]
    assert split == [("br.cpf", "111.444.777-35")]


def test_pieces_come_back_in_text_order(scan_impl):
    texts = ["e-mail ana@example.org e CPF 529.982.", "247-25"]
    per, _ = scan_texts(texts, scan_impl)
    assert [f.start for f in per[0]] == sorted(f.start for f in per[0])
    assert _values(texts, per)[0] == [("intl.email", "ana@example.org"), ("br.cpf", "529.982.")]


def test_a_joint_finding_over_a_value_found_on_its_own_is_not_added(scan_impl):
    # joined, "ana@example.org" + "br" reads as an e-mail ending in the next text; the e-mail found
    # in the first text stands, and no overlapping piece is added to either text
    texts = ["e-mail ana@example.org", "br, obrigado"]
    assert [f.end for f in scan_impl("".join(texts))] == [len(texts[0]) + 2]
    per, split = scan_texts(texts, scan_impl)
    assert _values(texts, per) == [[("intl.email", "ana@example.org")], []] and split == []


def test_a_value_cut_in_three_with_a_separator_as_a_part_of_its_own(scan_impl):
    texts = ["CPF 529.982", ".", "247-25"]
    per, split = scan_texts(texts, scan_impl)
    assert _values(texts, per) == [[("br.cpf", "529.982")], [("br.cpf", ".")], [("br.cpf", "247-25")]]
    assert split == [("br.cpf", CPF)]
