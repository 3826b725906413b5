"""Names and headings: how a document's name and its aliases are read from its text."""

from pagehop.text import heading, name_aliases


def test_a_heading_is_a_short_first_line_without_markup_and_never_wrapped_prose() -> None:
    assert heading("# Field notes\n\nOtters sleep by day.") == "Field notes"
    assert heading("Harbor Lane Robotics - Annual Review 2021\nThe company builds robots.") == (
        "Harbor Lane Robotics - Annual Review 2021"
    )
    # A sentence broken at the end of a line is prose, not a title.
    assert heading("Quayside Automation is a crane-software company based in Antwerp. It was\nfounded") == ""
    assert heading("The company was founded in 2014.\nMore text") == ""


def test_aliases_drop_a_qualifier_and_a_dash_subtitle_but_keep_a_colon_title_whole() -> None:
    assert name_aliases("Alien (film)") == [("alien", "film"), ("alien",)]
    assert name_aliases("Harbor Lane Robotics - Annual Review 2021")[-1] == ("harbor", "lane", "robotics")
    assert name_aliases("Star Wars: A New Hope") == [("star", "wars", "a", "new", "hope")]
