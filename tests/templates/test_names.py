import pytest

from corral.templates.names import TemplateNameError, check_name


@pytest.mark.parametrize("name", ["base", "a", "0", "code-interpreter-v1", "my.tpl_2", "a" * 63, "a..", "x-"])
def test_valid_names_pass_through(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", [
    "", ".", "..", "../etc", "a/b", "/etc", "base/", ".hidden", "-a", "_a", "A", "Base", "a b",
    "a" * 64, "base\n", "a\x00", " a", "ä", "a\\b", "~root", ".build-base-1-x", ".trash",
])
def test_invalid_names_are_rejected_with_a_clear_error(name):
    with pytest.raises(TemplateNameError, match="invalid template name"):
        check_name(name)


@pytest.mark.parametrize("value", [None, 1, b"base", ["base"]])
def test_non_strings_are_rejected(value):
    with pytest.raises(TemplateNameError, match="must be a string"):
        check_name(value)


def test_error_message_is_bounded_for_huge_input():
    with pytest.raises(TemplateNameError) as info:
        check_name("x" * 10_000)
    assert len(str(info.value)) < 300
