"""The heuristic PII detector: patterns that find candidates, validators that keep only real ones, and masking.

Pure functions over one text, fast enough for ≥ 5 MB/s on one core (benchmarks/anonymization.py measures it):
every pattern starts on a character class that fails at once on most positions, and the costly validation
(`phonenumbers`, `python-stdnum`'s checksums, `ipaddress`) runs on candidates only. Microsoft Presidio's
recognizers were the model (pattern, then validation, then context words that raise or lower a score), but
Presidio itself needs a spaCy model download to start, so we use the two libraries its recognizers lean on for
the hard parts: Google's numbering plans (`phonenumbers`) and checksum algorithms (`python-stdnum`).

Offsets are in characters (Python `str` indices) of the text given, end exclusive.

Over 500 lines on purpose: one recognizer per PII type (pattern, validator, context words) and the masking they
share; each recognizer is short, and they are read and measured together (the benchmark's per-type table).
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.es import dni as es_dni
from stdnum.es import nie as es_nie
from stdnum.us import ssn as us_ssn

# The types the heuristics find, and what each is (the README's detection table lists the same).
HEURISTIC_TYPES: dict[str, str] = {
    "email": "e-mail address",
    "phone_number": "phone number, international (+, 00) or national (US, GB, DE, FR, IT)",
    "credit_card": "payment card number (Luhn checksum and a card network's prefix)",
    "iban": "IBAN (country length and mod-97 checksum)",
    "ip_address": "IPv4 or IPv6 address",
    "url": "URL (http, https or www.)",
    "us_ssn": "US Social Security number (area, group and serial rules)",
    "uk_nino": "UK National Insurance number (prefix and suffix rules)",
    "es_dni": "Spanish DNI or NIE (check letter)",
    "date_of_birth": "a date that context says is a birth date",
}
# Types only the `llm` method finds: no pattern tells a name or an address from other words.
LLM_TYPES: dict[str, str] = {
    "first_name": "a person's given name",
    "last_name": "a person's family name",
    "full_name": "a person's full name",
    "street_address": "a postal address (street, number, city, postcode)",
    "organization": "a company or institution's name",
}
PII_TYPES: dict[str, str] = HEURISTIC_TYPES | LLM_TYPES

# Keep phonenumbers' compiled metadata patterns: left to the re module's 512-entry cache, numbers of several regions
# evict each other's patterns and every parse compiles again (ten times slower).
phonenumbers.re_util.enable_pattern_cache()
DEFAULT_THRESHOLD = 0.5
# National formats are read with these numbering plans; international ones (+, 00) with their own. A national
# number with a trunk prefix 0 is read as GB, DE, FR or IT; without one as NANP (US, Canada), whose 10 digits with
# an area code cannot start with 0 or 1.
TRUNK_REGIONS = ("GB", "DE", "FR", "IT")
NANP_REGIONS = ("US",)
# Shapes that are something else: dates, IPv4 addresses, SSNs.
NOT_PHONE_SHAPE = re.compile(
    r"^(?:\d{4}-\d\d-\d\d|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{1,3}(?:\.\d{1,3}){3}|\d{3}-\d\d-\d{4})$"
)


@dataclass(frozen=True, slots=True)
class Entity:
    start: int
    end: int
    label: str
    score: float


# --- Context: words before a candidate (or its CSV column's header) that say what it is ---

CONTEXT_WINDOW = 40  # characters looked at before a candidate, on its line

PHONE_WORDS = re.compile(r"phone|tel\b|tel\.|mobile|cell|call|fax|ring|text me|whatsapp|contact|landline", re.I)
SSN_WORDS = re.compile(r"ssn|social security|social sec", re.I)
DOB_WORDS = re.compile(r"born|birth|\bdob\b|d\.o\.b|b-day|bday|naissance|geboren|nacimiento", re.I)
VERSION_WORDS = re.compile(r"\b(?:v|version|ver\.?|release|build|firmware)\s*$", re.I)
# Words right before a number that say it is something else: "order #4820193746", "SKU 695-22-8836".
NOT_PII_WORDS = re.compile(
    r"(?:\b(?:order|invoice|inv|ticket|ref|reference|sku|part|serial|tracking|isbn|ean|item|model|no)\b\W{0,3}|#)$",
    re.I,
)
SENTENCE_END = re.compile(r".*[.!?;](?:\s|$)", re.S)


def _csv_header(text: str, line_start: int, position: int) -> str:
    """The header of the CSV column `position` is in, when the text's first line is a CSV header."""
    if line_start == 0:
        return ""
    headers = csv_header_fields(text)
    if not headers:
        return ""
    prefix = text[line_start:position]
    # Quoted fields may hold commas ("12 Baker Street, London"): the csv module counts the columns.
    column = len(next(csv.reader([prefix]), [""])) - 1 if '"' in prefix else prefix.count(",")
    return headers[column] if column < len(headers) else ""


def has_context(text: str, start: int, words: re.Pattern[str]) -> bool:
    """Whether `words` occur just before `start` in its sentence, or name its CSV column."""
    line_start = text.rfind("\n", 0, start) + 1
    window = text[max(line_start, start - CONTEXT_WINDOW) : start]
    boundary = SENTENCE_END.match(window)
    if boundary:
        window = window[boundary.end() :]
    return bool(words.search(window)) or bool(words.search(_csv_header(text, line_start, start)))


def says_not_pii(text: str, start: int) -> bool:
    """Whether the words right before `start` name it as an order, invoice, SKU... number."""
    return bool(NOT_PII_WORDS.search(text[max(0, start - 20) : start]))


# --- Recognizers: a pattern, and a validator that answers a score (None: not an entity) ---

# (text, match, threshold) -> the match's score, or None when it is not an entity (the threshold lets a costly
# validation be skipped for a candidate that could not reach it anyway).
Validator = Callable[[str, re.Match[str], float], float | None]


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _email(text: str, match: re.Match[str], threshold: float) -> float | None:
    return 0.95


def _url(text: str, match: re.Match[str], threshold: float) -> float | None:
    return 0.9


# Card networks' number prefixes (IIN ranges) and lengths: a Luhn-valid order number of 16 digits is not a card.
CARD_NETWORKS = [
    (re.compile(r"^4"), {13, 16, 19}),  # Visa
    (re.compile(r"^(?:5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720))"), {16}),  # Mastercard
    (re.compile(r"^3[47]"), {15}),  # American Express
    (re.compile(r"^(?:6011|64[4-9]|65)"), {16, 17, 18, 19}),  # Discover
    (re.compile(r"^35(?:2[89]|[3-8])"), {16, 17, 18, 19}),  # JCB
    (re.compile(r"^3(?:0[0-5]|[689])"), {14, 15, 16, 17, 18, 19}),  # Diners Club
    (re.compile(r"^62"), {16, 17, 18, 19}),  # UnionPay
]


def _credit_card(text: str, match: re.Match[str], threshold: float) -> float | None:
    digits = _digits(match.group())
    if not any(prefix.match(digits) and len(digits) in lengths for prefix, lengths in CARD_NETWORKS):
        return None
    return 0.95 if luhn.is_valid(digits) else None


def _ssn(text: str, match: re.Match[str], threshold: float) -> float | None:
    if not us_ssn.is_valid(match.group().replace(" ", "-")) or says_not_pii(text, match.start()):
        return None
    return 0.95 if has_context(text, match.start(), SSN_WORDS) else 0.85


NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def _nino(text: str, match: re.Match[str], threshold: float) -> float | None:
    return None if match.group()[:2] in NINO_BAD_PREFIXES else 0.85


def _es_dni(text: str, match: re.Match[str], threshold: float) -> float | None:
    value = match.group().replace("-", "")
    return 0.9 if es_dni.is_valid(value) or es_nie.is_valid(value) else None


def _ipv4(text: str, match: re.Match[str], threshold: float) -> float | None:
    try:
        ipaddress.IPv4Address(match.group())
    except ValueError:
        return None
    # "v1.2.3.4", "version 10.0.0.1": a version string shaped like an address
    return 0.3 if VERSION_WORDS.search(text[max(0, match.start() - 12) : match.start()]) else 0.9


def _ipv6(text: str, match: re.Match[str], threshold: float) -> float | None:
    value = match.group()
    if sum(c.isalnum() for c in value) < 4:
        return None
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return 0.9


NANP = re.compile(r"^1?[2-9]\d\d[2-9]\d{6}$")  # area code and exchange never start with 0 or 1


def _phone(text: str, match: re.Match[str], threshold: float) -> float | None:
    value = match.group()
    digits = _digits(value)
    if not 7 <= len(digits) <= 15 or NOT_PHONE_SHAPE.match(value) or says_not_pii(text, match.start()):
        return None
    if value.startswith(("+", "00")):
        if threshold > 0.95:
            return None
        return 0.95 if _valid_international(digits[2:] if value.startswith("00") else digits) else None
    # A bare run of digits is as likely an order or account number: only with a word that says "phone".
    formatted = any(c in value for c in " ().-")
    score = 0.9 if has_context(text, match.start(), PHONE_WORDS) else 0.8 if formatted else 0.4
    if score < threshold:
        return None  # not worth the numbering plan's validation
    if digits.startswith("0"):
        valid = any(_valid_national(digits, region) for region in TRUNK_REGIONS)
    else:
        valid = bool(NANP.match(digits)) and _valid_national(digits[-10:], "US")
    if not valid:
        return None
    return score


# phonenumbers.parse costs ~300 µs (it normalises any text, letters and extensions included); our candidates are
# digits already, so the number is built directly and only the numbering plan's validation (~10-40 µs) runs.
def _number(country_code: int, national: str) -> phonenumbers.PhoneNumber:
    if country_code == 39 and national.startswith("0"):  # Italian fixed lines keep their 0 after +39
        return phonenumbers.PhoneNumber(country_code=39, national_number=int(national), italian_leading_zero=True)
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national.lstrip("0") or "0"))


def _valid_international(digits: str) -> bool:
    for length in (1, 2, 3):  # country codes are prefix-free: at most one of these is one
        country_code = int(digits[:length])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            number = _number(country_code, digits[length:])
            if country_code == 1:  # 25 regions share +1: the two that hold most numbers first
                return any(phonenumbers.is_valid_number_for_region(number, r) for r in ("US", "CA")) or (
                    phonenumbers.is_valid_number(number)
                )
            return bool(phonenumbers.is_valid_number(number))
    return False


def _valid_national(digits: str, region: str) -> bool:
    number = _number(phonenumbers.country_code_for_region(region), digits)
    return bool(phonenumbers.is_valid_number_for_region(number, region))


MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
            ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
            ("nov", "november"), ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}  # fmt: skip


def _date_parts(match: re.Match[str]) -> tuple[int, int, int] | None:
    """(year, month, day) of a date match, or None if no reading of it is a real date."""
    groups = match.groupdict()
    if groups.get("iso_y"):
        return int(groups["iso_y"]), int(groups["iso_m"]), int(groups["iso_d"])
    if groups.get("num_y"):
        a, b, year = int(groups["num_a"]), int(groups["num_b"]), int(groups["num_y"])
        # Day-first (most of the world) unless that is impossible and month-first (US) is not.
        return (year, b, a) if b <= 12 else (year, a, b)
    month_name = (groups.get("dm_m") or groups.get("md_m") or "").lower().rstrip(".")
    month = MONTHS.get(month_name)
    if month is None:
        return None
    if groups.get("dm_m"):
        return int(groups["dm_y"]), month, int(groups["dm_d"])
    return int(groups["md_y"]), month, int(groups["md_d"])


def _date_of_birth(text: str, match: re.Match[str], threshold: float) -> float | None:
    parts = _date_parts(match)
    if parts is None:
        return None
    try:
        when = date(*parts)
    except ValueError:
        return None
    if not 1900 <= when.year <= date.today().year:  # noqa: DTZ011 - a calendar year bound, no time zone involved
        return None
    # A date is a birth date when a cue precedes it (the windows start at cues) or its CSV column says so.
    return 0.85 if has_context(text, match.start(), DOB_WORDS) else None


_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_DATE = (
    r"(?<![\w/.-])(?:"
    r"(?P<iso_y>(?:19|20)\d\d)-(?P<iso_m>[01]?\d)-(?P<iso_d>[0-3]?\d)"
    r"|(?P<num_a>[0-3]?\d)[/.-](?P<num_b>[0-3]?\d)[/.-](?P<num_y>(?:19|20)\d\d)"
    rf"|(?P<dm_d>[0-3]?\d)(?:st|nd|rd|th)?\s(?:of\s)?(?P<dm_m>(?i:{_MONTH_NAMES}))\.?,?\s(?P<dm_y>(?:19|20)\d\d)"
    rf"|(?P<md_m>(?i:{_MONTH_NAMES}))\.?\s(?P<md_d>[0-3]?\d)(?:st|nd|rd|th)?,?\s(?P<md_y>(?:19|20)\d\d)"
    r")(?![\w/-]|\.\d)"
)

DATE = re.compile(_DATE)


@dataclass(frozen=True)
class Recognizer:
    label: str
    pattern: re.Pattern[str]
    validate: Validator
    # For number recognizers: whether a cluster of digits (its text, its count of digits) may hold one, a cheap test
    # that spares most clusters (prices, dates, versions) most patterns.
    wants: Callable[[str, int], bool] = lambda value, digits: True  # noqa: E731


# Recognizers of numbers: run only on the windows around clusters of digits (see `_number_windows`).
NUMBER_RECOGNIZERS = [
    Recognizer(
        "credit_card", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"), _credit_card, lambda v, d: 13 <= d <= 19
    ),
    Recognizer("us_ssn", re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])"), _ssn, lambda v, d: d == 9),
    Recognizer(
        "uk_nino",
        re.compile(r"(?<!\w)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)"),
        _nino,
        lambda v, d: d == 6,
    ),
    Recognizer(
        "es_dni",
        re.compile(r"(?<![\w-])(?:\d{8}|[XYZ]-?\d{7})-?[A-HJ-NP-TV-Z](?!\w)"),
        _es_dni,
        lambda v, d: d in (7, 8),
    ),
    Recognizer(
        "ip_address",
        re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"),
        _ipv4,
        lambda v, d: d <= 12 and v.count(".") >= 3,
    ),
    Recognizer(
        "phone_number",
        re.compile(
            r"(?<![\w+/.-])(?:(?:\+|00)\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,12}(?:[ .-]\d{1,8}){0,5}"
            r"(?![\w/-]|\.\d)"
        ),
        _phone,
        lambda v, d: 7 <= d <= 15,
    ),
]
EMAIL = Recognizer(
    "email",
    re.compile(
        r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
    ),
    _email,
)
# Starts on its literal prefix, which the regex engine finds fast; the word boundary is checked after.
# No commas: a URL in a CSV row would run into the next fields (a comma in a URL is rare, and %2C where it occurs).
URL = Recognizer("url", re.compile(r"(?:https?://|www\.)[^\s<>\"'`{}|\\^\[\],]+(?<![.;:!?)'\"])"), _url)
IPV6 = Recognizer(
    "ip_address", re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}|:)(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"), _ipv6
)
DATE_OF_BIRTH = Recognizer("date_of_birth", DATE, _date_of_birth)

# Digits joined by at most two separators: "+44 20 7946 0958", "(415) 555-0132", "192.168.1.20", "12 34 56".
DIGIT_CLUSTER = re.compile(r"\d(?:[ .()/+-]{0,2}\d)*")
SEPARATORS = str.maketrans("", "", " .()/+-")
WINDOW_BEFORE = 5  # room for "+", "(", an IBAN's or NINO's letters, an NIE's "X-"
WINDOW_AFTER = 4  # room for a NINO's " C", a DNI's letter, and the character that ends the match
DOB_CUES = ("born", "birth", "dob", "d.o.b", "bday", "b-day", "naissance", "geboren", "nacimiento")
DOB_WINDOW = 60  # characters after a cue where its date may be

# An IBAN may be written in groups of four; where it ends is found by its checksum (the next word may be caps).
IBAN_SCORE = 0.98  # a country's length and a mod-97 checksum: a chance match is one in millions
IBAN_CANDIDATE = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?!\w)")


def _iban_spans(text: str) -> Iterable[tuple[int, int]]:
    for match in IBAN_CANDIDATE.finditer(text):
        if match.start() and text[match.start() - 1].isalnum():
            continue
        value = match.group()
        ends = [i for i, c in enumerate(value) if c == " "] + [len(value)]
        for end in reversed(ends):  # longest first
            if stdnum_iban.is_valid(value[:end]):
                yield match.start(), match.start() + end
                break


def _number_windows(text: str) -> Iterable[tuple[int, int, str, int]]:
    """(start, end, cluster, digits) of a window around each cluster of at least 4 digits (nothing shorter is PII)."""
    for match in DIGIT_CLUSTER.finditer(text):
        value = match.group()
        if len(value) >= 4:
            digits = len(value.translate(SEPARATORS))
            if digits >= 4:
                yield max(0, match.start() - WINDOW_BEFORE), min(len(text), match.end() + WINDOW_AFTER), value, digits


def _positions(text: str, needle: str) -> Iterable[int]:
    position = text.find(needle)
    while position >= 0:
        yield position
        position = text.find(needle, position + 1)


def csv_header_fields(text: str) -> list[str]:
    """The column names when the text's first line is a CSV header (short names, at least two), else []."""
    end = text.find("\n")
    first_line = text[:end] if end > 0 else ""
    if "," not in first_line:
        return []
    fields = next(csv.reader([first_line]), [])
    return fields if len(fields) >= 2 and all(0 < len(f) <= 40 for f in fields) else []


def _dob_windows(text: str) -> Iterable[tuple[int, int]]:
    """Where a birth date may be: after each cue word, and everywhere when a CSV column is a birth date."""
    if any(DOB_WORDS.search(field) for field in csv_header_fields(text)):
        yield 0, len(text)
        return
    lowered = text.lower()
    for cue in DOB_CUES:
        for position in _positions(lowered, cue):
            yield position, min(len(text), position + DOB_WINDOW)


def _ipv6_windows(text: str) -> Iterable[tuple[int, int]]:
    """Around each colon between hex digits (or a "::"), where an IPv6 address may be."""
    hexdigits = "0123456789abcdefABCDEF:"
    last_end = -1
    for position in _positions(text, ":"):
        if position <= last_end:
            continue
        if 0 < position < len(text) - 1 and text[position - 1] in hexdigits and text[position + 1] in hexdigits:
            last_end = min(len(text), position + 45)
            yield max(0, position - 5), last_end


def detect(text: str, pii_types: Iterable[str], *, threshold: float = DEFAULT_THRESHOLD) -> list[Entity]:
    """The entities of `pii_types` in `text` scoring at least `threshold`, in text order, never overlapping.

    Each recognizer looks only where its entity can be (around an "@", a cluster of digits, a colon between hex
    digits, a birth-date cue), so most of the text is read by one fast scan per kind of cue."""
    wanted = set(pii_types)
    found: set[Entity] = set()

    def scan(recognizer: Recognizer, start: int = 0, end: int | None = None) -> None:
        for match in recognizer.pattern.finditer(text, start, len(text) if end is None else end):
            score = recognizer.validate(text, match, threshold)
            if score is not None and score >= threshold:
                found.add(Entity(match.start(), match.end(), recognizer.label, score))

    if "email" in wanted:
        for at in _positions(text, "@"):
            scan(EMAIL, max(0, at - 64), min(len(text), at + 256))
    if "url" in wanted:
        for match in URL.pattern.finditer(text):
            if (match.start() == 0 or not text[match.start() - 1].isalnum()) and URL.validate(text, match, threshold):
                found.add(Entity(match.start(), match.end(), "url", 0.9))
    numbers = [r for r in NUMBER_RECOGNIZERS if r.label in wanted]
    if numbers:
        for start, end, cluster, digits in _number_windows(text):
            for recognizer in numbers:
                if recognizer.wants(cluster, digits):
                    scan(recognizer, start, end)
    if "ip_address" in wanted:
        for start, end in _ipv6_windows(text):
            scan(IPV6, start, end)
    if "date_of_birth" in wanted:
        for start, end in _dob_windows(text):
            scan(DATE_OF_BIRTH, start, end)
    if "iban" in wanted and threshold <= IBAN_SCORE:
        found.update(Entity(start, end, "iban", IBAN_SCORE) for start, end in _iban_spans(text))
    return resolve_overlaps(found)


def detect_in_pieces(
    text: str, pii_types: Iterable[str], *, threshold: float = DEFAULT_THRESHOLD, piece_chars: int = 250_000
) -> Iterator[list[Entity]]:
    """`detect` a piece of about `piece_chars` characters at a time (cut at line ends), yielding each piece's entities
    with offsets in `text`: a worker can keep its lease alive between pieces of a large file. A CSV's header line is
    read with every piece, so its columns still say what a value is."""
    header = text[: text.find("\n") + 1] if csv_header_fields(text) else ""
    start = 0
    while start < len(text):
        end = min(len(text), start + piece_chars)
        if end < len(text):
            newline = text.rfind("\n", start, end)
            end = newline + 1 if newline >= start else end
        prefix = header if start else ""
        found = detect(prefix + text[start:end], pii_types, threshold=threshold)
        shift = start - len(prefix)
        yield [Entity(e.start + shift, e.end + shift, e.label, e.score) for e in found if e.start >= len(prefix)]
        start = end


def resolve_overlaps(entities: Iterable[Entity]) -> list[Entity]:
    """Keep the longest of overlapping entities (then the higher score): a URL keeps the e-mail inside it whole,
    an IBAN its digits that looked like a phone number."""
    kept_starts: list[int] = []
    kept: list[Entity] = []
    for entity in sorted(entities, key=lambda e: (-(e.end - e.start), -e.score, e.start)):
        index = bisect.bisect_left(kept_starts, entity.start)
        if index > 0 and kept[index - 1].end > entity.start:
            continue
        if index < len(kept) and kept[index].start < entity.end:
            continue
        kept_starts.insert(index, entity.start)
        kept.insert(index, entity)
    return kept


def mask_for(label: str, mask_config: dict[str, str] | None) -> str:
    """What an entity of `label` is replaced with: `mask_config[label]`, else `<LABEL>`."""
    if mask_config and label in mask_config:
        return mask_config[label]
    return f"<{label.upper()}>"


def mask(text: str, entities: Iterable[Entity], mask_config: dict[str, str] | None = None) -> str:
    """`text` with every entity replaced (entities in text order, not overlapping, as `detect` gives them)."""
    pieces: list[str] = []
    position = 0
    for entity in entities:
        pieces.append(text[position : entity.start])
        pieces.append(mask_for(entity.label, mask_config))
        position = entity.end
    pieces.append(text[position:])
    return "".join(pieces)
