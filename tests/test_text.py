"""Names and headings: how a document's name and its aliases are read from its text."""

from pagehop.text import asking_part, bare_name, heading, name_aliases, sentences


def test_a_heading_is_a_short_first_line_without_markup_and_never_wrapped_prose() -> None:
    assert heading("# Field notes\n\nOtters sleep by day.") == "Field notes"
    assert heading("Harbor Lane Robotics - Annual Review 2021\nThe company builds robots.") == (
        "Harbor Lane Robotics - Annual Review 2021"
    )
    # A sentence broken at the end of a line is prose, not a title.
    assert heading("Quayside Automation is a crane-software company based in Antwerp. It was\nfounded") == ""
    assert heading("The company was founded in 2014.\nMore text") == ""
    assert heading("Otters sleep. They eat fish\nmore") == ""


def test_a_heading_may_hold_initials_and_abbreviations() -> None:
    """Names of people and titles carry periods that end no sentence."""
    assert heading("Albert S. Rogell\n\nAlbert S. Rogell was a film director.") == "Albert S. Rogell"
    assert heading("J. W. N. Sullivan\nHe wrote.") == "J. W. N. Sullivan"
    assert heading("Back in the U.S.A.\nA song.") == "Back in the U.S.A."
    assert heading("Mr. Ace\nA film.") == "Mr. Ace"
    assert heading("John Middleton Murry Jr.\nA writer.") == "John Middleton Murry Jr."
    # ... but a word of two or more letters before the period still ends a sentence.
    assert heading("Revenue grew in 2021. Costs fell\nmore") == ""


def test_aliases_drop_a_qualifier_and_a_dash_subtitle_but_keep_a_colon_title_whole() -> None:
    assert name_aliases("Alien (film)") == [("alien", "film"), ("alien",)]
    assert name_aliases("Harbor Lane Robotics - Annual Review 2021")[-1] == ("harbor", "lane", "robotics")
    assert name_aliases("Star Wars: A New Hope") == [("star", "wars", "a", "new", "hope")]
    # the barest alias as the title writes it; a parenthesis inside the name stays
    assert bare_name("Harbor Lane Robotics - Annual Review 2021") == "Harbor Lane Robotics"
    assert bare_name("Alien (film)") == "Alien"
    assert bare_name("Richard (III), bishop of Bayeux") == "Richard (III), bishop of Bayeux"


def test_the_asking_part_of_a_question_leaves_out_instructions_about_the_answers_form() -> None:
    assert asking_part("What was revenue in 2021? Round your answer to two decimals.") == "What was revenue in 2021?"
    assert asking_part("Who founded it? When? Answer in one word.") == "Who founded it? When?"
    # Nothing asks, or the asking sentence is last: the question stays whole.
    assert asking_part("List the pages that show a chart. Format them as a list.") == (
        "List the pages that show a chart. Format them as a list."
    )
    assert asking_part("Read the table. Which year was best?") == "Read the table. Which year was best?"


def test_sentences_do_not_end_at_initials_or_short_forms() -> None:
    text = "Phalitamsha is a film directed by S. R. Puttanna Kanagal. It was written by Dr. Ada Byron. It ended."
    assert sentences(text) == [
        "Phalitamsha is a film directed by S. R. Puttanna Kanagal.",
        "It was written by Dr. Ada Byron.",
        "It ended.",
    ]
