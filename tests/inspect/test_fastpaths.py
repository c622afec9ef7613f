"""The compiled core's fast paths give exactly the reference's findings.

Each fast path of ``_scan_c`` (the per-cluster overlap resolution, the 1-byte normalization check and
patching, the skipping of runs that cannot start anything, the keyword-word filter) has inputs
built to sit on its edges: pure ASCII, one non-ASCII byte at the very start or end, soft hyphens
and other folded bytes inside digit runs of 1-byte strings, keyword first letters at buffer ends,
long chains of overlapping candidates.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gateway.inspect import _scan_py

_scan_c = pytest.importorskip("gateway.inspect._scan_c")

SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _same(text: str) -> None:
    expected = _scan_py.scan(text)
    got = _scan_c.scan(text)
    assert got == expected, {"text": text, "reference": expected, "compiled": got}


# Values and words the rules react to, all encodable in Latin-1 (1-byte strings).
VALUES = ["529.982.247-25", "52998224725", "11.222.333/0001-81", "12.ABC.345/01DE-35",
          "BOXW310820HNERXN09", "GODE561231GR8", "20-26756539-3", "12.531.909-2", "536-22-5435",
          "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "+55 11 91234-5678", "(11) 3456-7890",
          "(+57) 320 715 60 67", "555-0100x1736", "192.168.0.1", "2001:db8::1", "ana.silva@gov.br",
          "j_doe+tag@mail.example.org", "password=hunter2!", "sk-" + "a" * 40, "CID E11.9",
          "TOP SECRET", "HIV positivo", "câncer de mama", "Ñandú 12.345.678", "123871965 5",
          # lower-case and mixed-case compact values, x and Ñ inside chunks, chunks over 8 bytes
          "12.abc.345/01de-35", "boxw310820hnerxn09", "gb82 west 1234 5698 7654 32", "12x34x56",
          "ABCÑ123456", "GODÑ561231GR8", "GB82WEST12345698765432", "4111111111111111",
          "v-11470283-4", "+57 320 715 60 67", "1.2.3.4.5", "01.02.03.04"]
WORDS = ["CPF", "cpf", "Cpf", "CNPJ", "RG", "cartão", "CARTÃO", "SUS", "CURP", "RFC", "RUT", "CUIT", "SSN", "IBAN",
         "título", "número", "Número", "nº", "ñandú", "São",
         "tel", "telefone", "teléfono", "paciente", "patient", "card", "de", "da", "del", "y", "en",
         "secreto", "reservada", "diagnóstico", "contato", "email", "senha", "sit", "dolore",
         "consectetur", "a", "o", "e", "I", "O", "l", "x", "s", "sk", "ey", "eyJ", "A", "AKIA"]
# Latin-1 characters that normalization changes (folded or dropped) and some it keeps.
FOLDED = ["\u00a0", "\u00ad", "\u00b2", "\u00b3", "\u00b9", "\u00aa", "\u00ba", "\u00bd", "\u00b5"]
KEPT = ["é", "ñ", "Ñ", "ç", "ã", "ü", "ß", "×", "÷", "\u00bf", "\u00a1", "\u00ff", "\u0080", "\u009f"]
HOMO = ["O", "l", "I", "0", "1", "o", "L", "i"]
GAPS = [" ", "", ".", "-", "/", "\n", "\t", ", ", ": ", "(", ")", "@", "=", ":"]


def _nbytes(text: str) -> int:
    return 1 if max(text, default="\0") < "\u0100" else 2


piece = st.one_of(st.sampled_from(VALUES), st.sampled_from(WORDS), st.sampled_from(FOLDED),
                  st.sampled_from(KEPT), st.sampled_from(HOMO), st.sampled_from(GAPS),
                  st.text(alphabet="0123456789", min_size=1, max_size=20),
                  st.text(alphabet="0123456789OlI", min_size=1, max_size=12))


@SETTINGS
@given(st.lists(piece, min_size=1, max_size=30))
def test_one_byte_pieces(parts):
    text = "".join(parts)
    assert _nbytes(text) == 1
    _same(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from("0123456789 .-OlIxae\u00ad\u00a0\u00b2\u00aaé"), max_size=200))
def test_digit_runs_with_folded_bytes(text):
    # soft hyphens, no-break spaces and superscripts inside digit runs of a 1-byte string
    _same(text)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("edge", ["", "é", "\u00ad", "\u00a0", "\u00b2", "\u00aa", "\u00ff", "l",
                                  "O", "0", "x"])
def test_one_changed_byte_at_either_end(value, edge):
    # pure ASCII but for one byte at the very start or the very end (or none at all)
    for text in (value + edge, edge + value, "CPF " + value + " fim" + edge, edge + "tel. " + value):
        _same(text)


@pytest.mark.parametrize("word", WORDS)
def test_keyword_letters_at_buffer_ends(word):
    # a keyword (or its first letters) as the first and last bytes of the buffer
    for text in (word, word[:1], word[:2], word + " 529.982.247-25", "529.982.247-25 " + word,
                 word + word, word[:1] + " " + word[:2], "x" * 15 + word, word + "9" * 15):
        _same(text)


def test_long_pure_ascii_prose():
    rng = random.Random(3)
    words = WORDS + ["lorem", "ipsum", "quisquam", "voluptatem", "Nam", "Sed", "ut", "et"]
    parts = []
    for _ in range(3000):
        r = rng.random()
        parts.append(rng.choice(VALUES) if r < .05 else rng.choice(words))
        parts.append(rng.choice([" ", " ", " ", ", ", ". ", "\n"]))
    text = "".join(parts)
    text = "".join(c for c in text if c < "\u0080")
    _same(text)
    _same(text + "é")
    _same("é" + text)
    _same(text + "\u00ad")
    _same(text[:-1] + "\u00b2")


def test_long_chains_of_overlapping_candidates():
    # windows chained through join gaps make one cluster of many overlapping candidates (more
    # than fit the small-cluster path), so the greedy choice is made in the large-cluster path
    for sep in (" ", ".", "-", "/"):
        _same(sep.join(["529", "982", "247", "25"] * 12))
        _same(sep.join(["11", "222", "333", "0001", "81"] * 10))
    _same("1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22")
    _same(" ".join("4111 1111 1111 1111".split() * 9))
    _same("".join(f"a{i}@b{i}.com" for i in range(40)))
    _same("password=" + "x" * 30 + " 529.982.247-25 " + "sk-" + "b" * 40 + "@x.com")


@settings(SETTINGS, max_examples=150)
@given(st.lists(st.sampled_from(VALUES + WORDS), min_size=2, max_size=40),
       st.sampled_from(["", " ", ".", "-", "/", "@"]))
def test_dense_overlaps(parts, sep):
    _same(sep.join(parts))


@pytest.mark.parametrize("tail", ["CPF 529.982.247-2O", "O1234567", "l23.456.789-09", "I0I", "añO 1l0",
                                  "x2O", "GB47IAUC41", "1O1 \u00aa", "\u00b2l", "l\u00b2", "12\u00ad34"])
def test_homoglyph_runs_late_in_the_text(tail):
    # the lexer meets a digit/O/l/I run only after it has found tokens, candidates and gates:
    # when the homoglyph step changes it, everything found so far is dropped and found again
    head = ("password=hunter2! sk-" + "a" * 40 + " ana.silva@gov.br 192.168.0.1 2001:db8::1 "
            "CPF 529.982.247-25 paciente com diabetes TOP SECRET CID E11.9 ")
    for text in (head + tail, head * 20 + tail, tail + " " + head, head + tail + " " + head):
        _same(text)


CHUNK_GAPS = [" ", ".", "-", "/", " - ", "  ", ") ", "    ", ", ", "", "\n", "x"]


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.tuples(st.text(alphabet="0123456789ABCxñÑ", min_size=1, max_size=12),
                          st.sampled_from(CHUNK_GAPS)), min_size=1, max_size=25),
       st.sampled_from(["", "CPF ", "tel ", "+", "(", "RUT: ", "Tarjeta "]))
def test_windows_of_consecutive_chunks(parts, lead):
    """Windows over runs of chunks: join gaps, gaps too long to join, x splits, Ñ inside
    chunks, and windows that stop early because no layout goes on from their chunk lengths."""
    _same(lead + "".join(a + g for a, g in parts))


@pytest.mark.parametrize("text", [
    "12.345.678/0001-95 11.222.333/0001-81", "4111 1111 1111 1111 1111 1111 1111 1111",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", "529.982.247-25.529.982.247-25",
    "55 11 91234 5678 55 11 91234 5678", "2O.123.456-7 20.123.456-7", "12x34x56x78x90 1234",
    # windows that end because no layout goes on from their chunk lengths, before a next chunk
    "52998224725 1 2", "BOXW310820HNERXN09 12 AB", "GB82WEST12345698765432 99", "+52998224725 1",
    "+55 11 91234 5678 9", "(11) 3456-7890 12", "536-22-5435-12-3"])
def test_chunk_runs_longer_than_a_window(text):
    _same(text)
    _same("CPF " + text)


def test_many_findings_leave_the_collector_as_it_was():
    """Findings are made with the collector off (more than one young-generation collection's
    worth here); it is on again afterwards, and stays off when the caller had turned it off."""
    import gc

    text = " ".join(["CPF 529.982.247-25", "ana.silva@gov.br", "4111 1111 1111 1111"] * 300)
    assert gc.isenabled()
    got = _scan_c.scan(text)
    assert len(got) == 900 and got == _scan_py.scan(text)
    assert gc.isenabled()
    gc.disable()
    try:
        assert _scan_c.scan(text) == got
        assert not gc.isenabled()
    finally:
        gc.enable()


NEUTRAL_GAPS = [" ", ", ", ". ", "; ", "! ", "?\n", " (", ") ", "\" ", "  \t", "...", " $", "#", "",
                "\u00a0", "\u00bf", "\u00ab ", " - ", "-", ": ", "@", "=", " +", "'", "’ "]


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(WORDS + VALUES[:12] + ["abcdefghijklmnop", "abcdefghijklmnopq",
                                                                   "abcdefghijklmno", "x" * 33]),
                          st.sampled_from(NEUTRAL_GAPS)), min_size=1, max_size=20))
def test_words_after_gaps_that_start_nothing(parts):
    """The common-word path steps over gaps of bytes that start nothing to the next word; a gap
    byte that does start something (- @ = :), a digit, a capital or a non-ASCII letter after it
    hands the text back to the outer loop."""
    _same("".join(w + g for w, g in parts))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 31, 32, 33])
@pytest.mark.parametrize("lead", ["", "a", "ab " * 5, "x" * 14 + " "])
def test_runs_around_sixteen_bytes(n, lead):
    """Lower-case and digit runs are measured 16 bytes at a time: runs of every length around
    16 and 32, ending at the end of the text or just before a letter, digit or Ñ."""
    for run in ("a" * n, "9" * n, "4111111111111111"[: min(n, 16)]):
        for tail in ("", " ", "Z", "1", "é", "Ñ", " CPF 529.982.247-25", "-x", "@gov.br"):
            _same(lead + run + tail)
            _same("cpf " + lead + run + tail)


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.sampled_from(["a", "sk", "sk-", "eyJ", "ey", "ghp_", "xox", "akia", "informa", "ção",
                                 "é", "ã", "ç", "ü", "ñ", "x", "1", "12", " ", "-", "_", "Z",
                                 "a" * 20, "proj-" + "b" * 30, "AKIA" + "C" * 16]),
                min_size=1, max_size=16))
def test_accented_words_with_lower_case_parts(parts):
    """Runs that mix ASCII and accented letters are split into chunks; a chunk of lower-case
    ASCII letters only opens no window and takes only the secret gates (sk-, eyJ, ...)."""
    _same("".join(parts))
    _same("token " + "".join(parts) + " fim")


@pytest.mark.parametrize("size", [1, 8, 15, 16, 17, 31, 32, 33, 40])
@pytest.mark.parametrize("byte", ["\u00a0", "\u00b2", "\u00ad", "é", "\u00aa"])
def test_folded_bytes_at_every_place_of_a_block(size, byte):
    """Bytes >= 0x80 are found 16 at a time (8 without SSE2) and the last bytes one by one: a
    folded, dropped or kept byte at each place of texts around those sizes."""
    base = "CPF 529.982.247-25 e 4111111111111111 x" * 2
    for at in range(size):
        text = (base[:at] + byte + base[at:])[:size + 1]
        _same(text)


# ---- block edges, every length, every Latin-1 code point, 2- and 4-byte strings

EDGE_ITEMS = ["529.982.247-25", "ana.silva@gov.br", "sk-" + "a" * 40, "4111 1111 1111 1111",
              "cartão 4111111111111111", "CPF 52998224725", "192.168.0.1", "2001:db8::1",
              "password=hunter2!", "BOXW310820HNERXN09", "TOP SECRET"]


@pytest.mark.parametrize("edge", [15, 16, 17, 63, 64, 65, 127, 128, 129])
@pytest.mark.parametrize("item", EDGE_ITEMS)
def test_values_straddling_block_edges(edge, item):
    """Runs are measured 16 (or 8) bytes at a time and bytes >= 0x80 found 16 at a time: a value
    whose every character in turn sits on a 16/64/128-byte edge, after ASCII prose, after a
    word running into the edge, and after accented letters."""
    for k in range(len(item) + 1):   # the edge falls right before item[k]
        pad = edge - k
        if pad < 0:
            continue
        for filler in ("x" * pad, ("ab " * 50)[:pad], "é" * pad, ("CPF " * 40)[:pad]):
            _same(filler + item + " fim")


@pytest.mark.parametrize("edge", [16, 32, 64, 128])
@pytest.mark.parametrize("char", ["é", "\u00a0", "\u00ad", "Ñ", "\u00b2", "\u0100", "\U0001F600"])
def test_non_ascii_next_to_block_edges(edge, char):
    base = "CPF 529.982.247-25 paciente ana.silva@gov.br 4111 1111 1111 1111 cartão " * 4
    for at in (edge - 2, edge - 1, edge, edge + 1):
        _same(base[:at] + char + base[at:])
        _same(base[:at] + char)


def test_every_length_up_to_130():
    rng = random.Random(11)
    alphabet = "0123456789 .-/@:=abcxyzABCÑñéO\u00a0\u00ad"
    src = "CPF 529.982.247-25 ana.silva@gov.br +55 11 91234-5678 TOP SECRET sk-" + "k" * 40
    for n in range(131):
        _same(src[:n])
        _same(src[len(src) - n:])
        _same("".join(rng.choice(alphabet) for _ in range(n)))


@pytest.mark.parametrize("cp", range(256))
def test_every_latin1_code_point_in_context(cp):
    ch = chr(cp)
    for text in (ch, ch * 3, "CPF" + ch + "529.982.247-25", "529" + ch + "982.247-25",
                 "ana" + ch + "silva@gov.br", "cart" + ch + "o 4111 1111 1111 1111",
                 ch + "sk-" + "a" * 40, "CID E11" + ch + "9", "A" + ch + "IDS", ch + "AIDS " + ch):
        _same(text)


# Words of keyword phrases with accented letters in every case: the token's case (a
# HEALTH_UPPER term counts only in capitals) comes from a table for Latin-1 letters.
ACCENTED_WORDS = ["ÁIDS", "áids", "Áids", "AÍDS", "TÁRV", "tárv", "ÁVC", "ávc",
                  # only a Latin-1 lower-case letter makes these no capitals-only term
                  "AíDS", "áVC", "TáRV", "CARTÃO", "Cartão",
                  "cartÃo", "TÍTULO", "Título", "NÚMERO", "número", "CÉDULA", "cédula", "ÑANDÚ",
                  "São", "ß", "ÿ", "ÀÉÎÕÜ", "àéîõü", "Ç", "ç", "ÆON", "ðð", "Þorn"]


@pytest.mark.parametrize("word", ACCENTED_WORDS)
def test_accented_keyword_words_in_every_case(word):
    for text in (word, word + " 529.982.247-25", "paciente com " + word,
                 "diagnóstico de " + word + " confirmado", word + " positivo", "CID " + word + " E11",
                 word + " " + word.upper() + " " + word.lower()):
        _same(text)


WIDE = ["\u0100", "\u2019", "\uff10", "\uff11", "\U0001F600", "\U0001D7CE", "\u01c5", "\u0130",
        "\u200b", "\u2011", "\u00b5"]


@pytest.mark.parametrize("wide", WIDE)
def test_the_same_values_in_two_and_four_byte_strings(wide):
    """The same values in UCS-2 and UCS-4 strings (one wide character makes the whole string
    wide): fullwidth and mathematical digits fold, titlecase letters, zero-width characters."""
    for value in VALUES[:20]:
        for text in (wide + " " + value, value + wide, "CPF " + value.replace(".", wide, 1),
                     value[:3] + wide + value[3:]):
            _same(text)


@SETTINGS
@given(st.lists(st.one_of(piece, st.sampled_from(WIDE)), min_size=1, max_size=30))
def test_wide_string_pieces(parts):
    _same("".join(parts))


# Words of ASCII and accented letters in 1-byte text take a path of their own: its edges are
# the first letter (a capital opens a window only alone: "Ação"), secret prefixes after an
# accented letter, and the shapes it hands back to the general path (Ñ/ñ, a digit, a capital).
ACCENT_PARTS = ["a", "A", "E", "O", "x", "sk", "ey", "eyJ", "gh", "AKIA", "ção", "ã", "é", "ü", "ß",
                "ÿ", "ñ", "Ñ", "1", "9", "Z", "informa", "s", "-", "_", "k" * 20]
ACCENT_ENDS = ["", " ", ".", "-", "@x.com", "=1", "\u00a0", "\u00ab", "\u00b0", "1", " 12.345.678-5",
               " 529.982.247-25", ":", "\n"]


@SETTINGS
@given(st.sampled_from(["A", "a", "C", "s", "e", "x", "E", "S", "g", "O"]),
       st.lists(st.sampled_from(ACCENT_PARTS), min_size=1, max_size=8),
       st.sampled_from(ACCENT_ENDS), st.sampled_from(["", "CPF ", "RUT ", "x ", "paciente "]))
def test_accented_words(first, parts, end, lead):
    _same(lead + first + "".join(parts) + end)


@pytest.mark.parametrize("word", ["Ação", "Éxito", "ação", "Çé", "Año", "niño", "Ação12", "AçãO",
                                  "séquito", "gh_é", "éskxyz", "Skú", "skí-" + "a" * 30, "eyÁ",
                                  "Câmara", "informação", "Comisión", "Eá", "Aé",
                                  # a secret right after an accented letter (no look-behind hit)
                                  "aésk-" + "a" * 40, "nãoxoxb-" + "1" * 20, "Caéghp_" + "b" * 36,
                                  "oésk_live_" + "c" * 24])
@pytest.mark.parametrize("after", ["", " 12.345.678-5", " 1234-5678", "-12", "\u00a012"])
def test_accented_word_then_value(word, after):
    for text in (word + after, "RUT " + word + after, word + " " + word + after):
        _same(text)


# The context of each window of a number: context words that leave the 40 characters before a
# later chunk of the same number, or a new word between two numbers, change it; so does the
# restart on fully normalized text. (These caught a context mask wrongly kept between windows.)
CONTEXT_WORDS = ["CPF", "RUT", "SSN", "tel", "cartão", "número de", "cédula", "RG", "DNI", "NIT",
                 "nº", "sit amet", "e", "CURP"]


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(CONTEXT_WORDS + [""]),
                          st.sampled_from([" ", "  ", ": ", " " * 12, " x" * 9 + " ", "\n"]),
                          st.lists(st.text(alphabet="0123456789", min_size=1, max_size=9),
                                   min_size=1, max_size=9),
                          st.sampled_from([" ", ".", "-", "/", ". "])),
                min_size=1, max_size=6),
       st.sampled_from(["", "l", "O", "\u00ad"]))
def test_context_of_consecutive_windows(parts, homo):
    text = " ".join(word + gap + sep.join(chunks) for word, gap, chunks, sep in parts)
    _same(text)
    _same(text + " " + homo + "23.456.789-0")   # a homoglyph late: the text is lexed again


@pytest.mark.parametrize("pad", range(30, 46))
def test_context_word_leaving_the_window_inside_a_number(pad):
    # CPF ends exactly before, at or after the 40 characters before each chunk's start
    _same("CPF" + " " * pad + "529 982 247 25 111 444 777 35")
    _same("RUT" + " " * pad + "1 2 3 4 5 6 7 8 9 12.531.909-2")


def _layout_texts(seed: int) -> list[str]:
    """Runs of chunks shaped like every layout of the detector table (and its prefixes, and one
    chunk past it), after a "+", a "(", a context word or nothing: the layout trie's every node,
    the dead node a window after a "+" goes on from, and windows up to MAX_COMPACT and past it."""
    from gateway.inspect.detectors import LAYOUTS, MAX_COMPACT
    rnd = random.Random(seed)
    texts = []
    for lengths in sorted(LAYOUTS):
        for lead in ["", "+", "(", "CPF ", "tel ", "RUT "]:
            alphabet = "0123456789" if rnd.random() < 0.7 else "0123456789ABCDEFGHXYZÑ"
            parts = ["".join(rnd.choice(alphabet) for _ in range(n)) for n in lengths]
            more = rnd.choice(["", "1", "12", "123456", "x" * 3, "9" * (MAX_COMPACT - sum(lengths) + 1)])
            if more:
                parts.append(more)
            gaps = [rnd.choice([" ", ".", "-", "/", " - ", "\n", ") "]) for _ in parts]
            text = lead + "".join(p + g for p, g in zip(parts, gaps))
            texts.append(text.rstrip() if rnd.random() < 0.5 else text)
    return texts


@pytest.mark.parametrize("seed", range(4))
def test_every_layout_shape(seed):
    for text in _layout_texts(seed):
        _same(text)
        _same("número " + text + " fim")


def _catalogue_phrases() -> list[str]:
    from gateway.inspect import detectors, keywords
    phrases = {p for d in detectors.DETECTORS for p in keywords.CONTEXT.get(d.id, ())}
    for table in (keywords.ICD10_CONTEXT, keywords.HEALTH_TERMS, keywords.MARKINGS,
                  keywords.MARKING_LABELS):
        phrases.update(table)
    return sorted(phrases)


PHRASES = _catalogue_phrases()


def _word_forms(word: str) -> list[str]:
    """The word as the text may have it (lower case, a capital first, all capitals) and the near
    misses a word filter must still reject: its last letter changed, a letter more or less."""
    forms = [word, word.capitalize(), word.upper()]
    if word.isalpha() and len(word) > 1:
        z = chr((ord(word[-1]) - 97 + 1) % 26 + 97) if word[-1].islower() else "a"
        forms += [word[:-1] + z, word[:-1], word + word[-1], word[0] + word]
    return forms


@pytest.mark.parametrize("phrase", PHRASES)
def test_every_catalogue_phrase_and_its_near_misses(phrase):
    """Every word of every keyword phrase of the catalogue (the words the lexer's filters are
    built from), in every case and with its near misses, alone, at the text's end, as a phrase
    before a value and with a secret prefix right after it."""
    words = phrase.split(" ")
    for k, word in enumerate(words):
        for form in _word_forms(word):
            p = " ".join(words[:k] + [form] + words[k + 1:])
            for text in (form, "x " + form, p + " 529.982.247-25", p + ": 12.531.909-2",
                         p + " positivo", form + "sk-" + "a" * 40, form + " ghp_" + "b" * 36,
                         form + "." + p):
                _same(text)


# Accented forms of catalogue words (the catalogue holds them folded): the accented path folds
# them before its word filter.
ACCENTED_CATALOGUE = ["saúde", "Saúde", "SAÚDE", "diagnóstico", "Diagnóstico", "número", "Número",
                      "título", "cédula", "teléfono", "Teléfono", "cartão", "Cartão", "câncer",
                      "informação", "situación", "información", "república", "líder", "María",
                      "nº", "Nº", "númeró", "saúdes", "saúd", "diagnósticos", "diagnóstica",
                      "éxito", "Árbol", "aé", "aéb", "até", "já", "sé", "ação", "Ação", "Ü",
                      "cámara" + "a" * 14, "informaçãoinformação", "téléphonenumberx"]


@pytest.mark.parametrize("word", ACCENTED_CATALOGUE)
def test_accented_catalogue_words(word):
    for text in (word, word + " 529.982.247-25", "x " + word, word + " de 12.531.909-2",
                 "histórico de " + word + " 536-22-5435", word + "sk-" + "a" * 40,
                 word + " ghp_" + "b" * 36, word + "\u00a0" + word + "." + word):
        _same(text)


@pytest.mark.parametrize("gate", ["token sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
                                  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
                                  "password=hunter2!", "https://user:pw@example.org",
                                  "-----BEGIN PRIVATE KEY-----"])
def test_a_scan_does_not_keep_the_last_scans_gates(gate, monkeypatch):
    """The scratch state a scan keeps for the next one (its buffers) holds no gate: a text with
    no credential prefix runs no credential rule, whatever the text scanned before it."""
    calls = []
    real = _scan_py._credentials

    def counted(*args):
        calls.append(args)
        return real(*args)

    clean = "O relatório trimestral da secretaria, CPF 529.982.247-25."
    expected = _scan_py.scan(gate), _scan_py.scan(clean)
    monkeypatch.setattr(_scan_py, "_credentials", counted)   # what the compiled core calls
    assert _scan_c.scan(gate) == expected[0]
    assert calls, "the gate itself runs the credential rules"
    calls.clear()
    assert _scan_c.scan(clean) == expected[1]
    assert not calls


# The accented-word path checks the secret gates of its later lower-case runs during its walk of
# the word, before it knows the word's shape: words it hands back to the general path after
# such a gate (a capital, a digit or Ñ/ñ later in the word) and gates at the text's end.
# (keys the reference finds on their own: a run of one letter is no key)
SECRET_TAILS = ["sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
                "ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3d", "gho_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3d",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
                "xoxb-1234567890-abcdefghij", "sk_live_Ab3dEf6hIj9kLm2nOp5qRs8t",
                "rk_test_Ab3dEf6hIj9kLm2nOp5qRs8t", "sk", "s", "ey", "eyJ", "gh", "xox", "sk_"]


@pytest.mark.parametrize("head", ["ação", "é", "Ação", "informação", "saúde", "aé", "sé", "Cé"])
@pytest.mark.parametrize("tail", SECRET_TAILS)
@pytest.mark.parametrize("after", ["", "A", "1", "ñ", "Ñ", "é", " ", "-x", "ção"])
def test_secret_prefix_after_an_accented_letter(head, tail, after):
    for text in (head + tail + after, "x " + head + tail + after + " CPF 529.982.247-25",
                 head + tail[:2] + after):
        _same(text)


ACUTE = {"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú", "c": "ç", "n": "ñ"}


def _accented_forms(word: str) -> list[str]:
    """The word with one letter accented (a vowel acute, c cedilla, n tilde; "ao" as "ão"), each
    place in turn: forms the catalogue holds folded, as the text would have them."""
    forms = [word[:k] + ACUTE[ch] + word[k + 1:] for k, ch in enumerate(word) if ch in ACUTE]
    forms += [word[:k] + "ã" + word[k + 1:] for k in range(len(word) - 1) if word[k:k + 2] == "ao"]
    return forms


@pytest.mark.parametrize("phrase", PHRASES)
def test_catalogue_phrases_with_accented_letters(phrase):
    """Every word of every catalogue phrase with an accented letter at each place, in the phrase
    before values that need a context and alone: the accented path's filter, folding and lookup
    find exactly the words the reference finds."""
    words = phrase.split(" ")
    for k, word in enumerate(words):
        for form in _accented_forms(word):
            for first in (form, form[:1].upper() + form[1:]):
                p = " ".join(words[:k] + [first] + words[k + 1:])
                _same(p)
                for value in ("12345678901", "898 0012 3456 7890", "12.345.678-9", "1234-5678",
                              "536-22-5435", "529.982.247-25"):
                    _same(p + " " + value)
