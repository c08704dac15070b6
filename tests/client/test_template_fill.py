"""Template placeholders: parsing, literal filling, and SMS / banner length rules."""

from client.core.content import Placeholder
from client.core.template_fill import fill, form_fields, measure, placeholder_names


def test_placeholder_names_in_order_without_duplicates() -> None:
    body = "Hi {first_name}, {agent} here. {first_name}, your visit {visit_time} moved. {not valid}"
    assert placeholder_names(body) == ["first_name", "agent", "visit_time"]


def test_form_fields_keep_declared_descriptions_and_add_undeclared() -> None:
    declared = [Placeholder("agent", "Your first name"), Placeholder("first_name", "First only")]
    fields = form_fields(["Hello {first_name} from {agent} at {clinic}"], declared)
    assert fields == [
        Placeholder("agent", "Your first name"),
        Placeholder("first_name", "First only"),
        Placeholder("clinic", ""),
    ]


def test_fill_replaces_every_occurrence() -> None:
    result = fill("{a} and {a} and {b}", {"a": "x", "b": "y"})
    assert result.text == "x and x and y"
    assert result.unfilled == ()


def test_values_are_literal_and_never_expand_again() -> None:
    result = fill("Dear {name}, call {phone}", {"name": "{phone} \\1 $0 %s", "phone": "555"})
    assert result.text == "Dear {phone} \\1 $0 %s, call 555"
    assert result.unfilled == ()


def test_blank_values_stay_visible_as_placeholders() -> None:
    result = fill("Hi {name}, see you at {time}. {name}!", {"name": "  ", "time": "3 pm"})
    assert result.text == "Hi {name}, see you at 3 pm. {name}!"
    assert result.unfilled == ("name",)


def test_sms_gsm7_single_message() -> None:
    report = measure("a" * 160, "sms")
    assert (report.length, report.limit, report.segments, report.encoding) == (160, 160, 1, "GSM-7")
    assert not report.over


def test_sms_gsm7_split_into_153_character_parts() -> None:
    report = measure("a" * 161, "sms")
    assert report.over
    assert report.segments == 2
    assert measure("a" * 307, "sms").segments == 3


def test_sms_extension_characters_count_twice() -> None:
    report = measure("€ [x]", "sms")
    assert report.encoding == "GSM-7"
    assert report.length == 8


def test_sms_non_gsm_character_switches_to_ucs2() -> None:
    report = measure("Señora Łucja", "sms")
    assert report.encoding == "UCS-2"
    assert report.limit == 70
    long = measure("ł" * 71, "sms")
    assert long.over
    assert long.segments == 2


def test_sms_emoji_counts_two_ucs2_units() -> None:
    assert measure("ok 👍", "sms").length == 5


def test_portal_banner_limit_and_unlimited_channels() -> None:
    assert measure("x" * 281, "portal_banner").over
    assert measure("x" * 280, "portal_banner").limit == 280
    email = measure("x" * 5000, "email")
    assert email.limit is None
    assert not email.over
    assert measure("", "sms").segments == 0
