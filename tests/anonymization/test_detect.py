"""The heuristic detector, one type at a time: what it must find, the look-alikes it must leave alone, masking,
thresholds and overlaps. The fixture benchmark (benchmarks/anonymization.py) measures it at scale."""

from __future__ import annotations

import pytest

from anonymization.detect import HEURISTIC_TYPES, PII_TYPES, Entity, detect, detect_in_pieces, mask, resolve_overlaps

FOUND = [
    ("email", "Write to maria.lopez+shop@mail.example.co.uk today.", "maria.lopez+shop@mail.example.co.uk"),
    ("phone_number", "Call +44 20 7946 0958 after six.", "+44 20 7946 0958"),
    ("phone_number", "Call 0044 20 7946 0958 after six.", "0044 20 7946 0958"),
    ("phone_number", "Office: (415) 555-0132.", "(415) 555-0132"),
    ("phone_number", "Ruf an: 030 901820", "030 901820"),
    ("phone_number", '{"phone": "4155550132"}', "4155550132"),
    ("credit_card", "Card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
    ("credit_card", "amex 3782-822463-10005", "3782-822463-10005"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 AB", "DE89 3704 0044 0532 0130 00"),
    ("iban", "to GB82WEST12345698765432.", "GB82WEST12345698765432"),
    ("ip_address", "from 192.168.1.20, then", "192.168.1.20"),
    ("ip_address", "host 2001:db8::8a2e:370:7334 up", "2001:db8::8a2e:370:7334"),
    ("url", "See https://shop.example.com/orders?id=5.", "https://shop.example.com/orders?id=5"),
    ("url", "(www.example.org/help)", "www.example.org/help"),
    ("us_ssn", "SSN 536-90-4399 on file", "536-90-4399"),
    ("uk_nino", "NI number AB 12 34 56 C.", "AB 12 34 56 C"),
    ("es_dni", "DNI 12345678Z y NIE", "12345678Z"),
    ("es_dni", "NIE X1234567L.", "X1234567L"),
    ("date_of_birth", "She was born on 12 March 1985 in Leeds.", "12 March 1985"),
    ("date_of_birth", "DOB: 1985-03-12", "1985-03-12"),
    ("date_of_birth", "name,dob,city\nAnn,04/11/1979,York\n", "04/11/1979"),
]

LOOK_ALIKES = [
    "Order #4820193746 shipped.",  # a bare 10-digit number without a phone word
    "ISBN 978-0-306-40615-7",
    "Upgrade to version 3.11.4 or v1.2.3.4.",
    "Total: $1,299.00 (was €1.499,00).",
    "Meeting at 14:30:45 on 2024-03-12.",  # a date, but nobody's birth date
    "Invoice INV-2024-00183, tracking 1Z999AA10123456784.",
    "Card-like 4111 1111 1111 1112 fails Luhn.",
    "SSN-shaped 000-12-3456 and 666-12-3456 are never issued.",
    "IBAN-shaped DE89 3704 0044 0532 0130 01 fails mod-97.",
    "Not a NINO: GB 12 34 56 C.",
    "Address 999.10.1.1 is not IPv4.",
    "Founded in 1985, born of a merger.",  # "born" near a year, not a date
]


@pytest.mark.parametrize(("label", "text", "expected"), FOUND)
def test_it_finds_each_type(label: str, text: str, expected: str) -> None:
    found = [(e.label, text[e.start : e.end]) for e in detect(text, HEURISTIC_TYPES)]
    assert found == [(label, expected)]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_it_leaves_look_alikes_alone(text: str) -> None:
    assert [text[e.start : e.end] for e in detect(text, HEURISTIC_TYPES)] == []


def test_it_finds_only_the_types_asked_for() -> None:
    text = "mail a@b.io or call +44 20 7946 0958"
    assert [e.label for e in detect(text, ["phone_number"])] == ["phone_number"]
    assert detect(text, []) == []


def test_the_threshold_drops_weaker_findings() -> None:
    text = "Office: (415) 555-0132."  # formatted national number without a cue: 0.8
    assert [e.score for e in detect(text, ["phone_number"], threshold=0.8)] == [0.8]
    assert detect(text, ["phone_number"], threshold=0.81) == []


def test_masking_defaults_to_the_type_and_follows_mask_config() -> None:
    text = "Mail ann@example.com, call +44 20 7946 0958."
    entities = detect(text, PII_TYPES)
    assert mask(text, entities) == "Mail <EMAIL>, call <PHONE_NUMBER>."
    assert mask(text, entities, {"email": "[hidden]"}) == "Mail [hidden], call <PHONE_NUMBER>."


def test_the_longest_of_overlapping_entities_wins() -> None:
    text = "https://example.com/?to=ann@example.com"
    assert [(e.label, e.start, e.end) for e in detect(text, PII_TYPES)] == [("url", 0, len(text))]
    kept = resolve_overlaps([Entity(0, 5, "a", 0.9), Entity(3, 9, "b", 0.5), Entity(9, 12, "c", 0.5)])
    assert [e.label for e in kept] == ["b", "c"]


def test_a_large_file_read_in_pieces_finds_what_one_read_finds() -> None:
    rows = [f"Ann {i},0{i % 9 + 1}/03/1980,+44 20 7946 0{i % 1000:03d},ann{i}@example.com" for i in range(300)]
    text = "name,dob,phone,email\n" + "\n".join(rows) + "\n"
    whole = detect(text, HEURISTIC_TYPES)
    pieces = [e for found in detect_in_pieces(text, HEURISTIC_TYPES, piece_chars=500) for e in found]
    assert len(whole) == 900  # the dates need the header's "dob", read with every piece
    assert pieces == whole
