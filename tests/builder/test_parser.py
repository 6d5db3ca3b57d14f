"""Dockerfile parsing: forms, continuations, flags, and refusals that name the line."""

import pytest

from corral.builder.parser import DockerfileError, parse
from corral.builder.variables import SubstitutionError, expand


def test_every_supported_instruction_parses() -> None:
    text = """# comment
ARG BASE=debian:bookworm
FROM ${BASE}
ENV A=1 B="two words" \\
    C=3
LABEL x="y z"
WORKDIR /app
COPY --chown=user:user --chmod=0644 a b /dst/
ADD c /d
RUN echo hi && \\
    # a comment inside a continuation
    echo there
RUN ["python3", "-c", "print(1)"]
USER user
SHELL ["/bin/bash", "-c"]
EXPOSE 8080
CMD ["python3", "main.py"]
ENTRYPOINT /bin/true
"""
    ins = parse(text)
    assert [i.keyword for i in ins] == ["ARG", "FROM", "ENV", "LABEL", "WORKDIR", "COPY", "ADD", "RUN", "RUN",
                                        "USER", "SHELL", "CMD", "ENTRYPOINT"]
    env = ins[2]
    assert env.args == ("A", "1", "B", "two words", "C", "3")
    copy = ins[5]
    assert copy.flag("chown") == "user:user" and copy.flag("chmod") == "0644" and copy.args == ("a", "b", "/dst/")
    assert ins[7].args == ("echo hi && echo there",) and ins[7].line == 10
    assert ins[8].exec_form and ins[8].args == ("python3", "-c", "print(1)")
    assert ins[11].exec_form and not ins[12].exec_form


@pytest.mark.parametrize("text, needle", [
    ("FROM a\nHEALTHCHECKX x", "line 2: HEALTHCHECKX is not supported"),
    ("RUN echo", "line 1: the first instruction must be FROM"),
    ("FROM a\nFROM b", "line 2: multi-stage"),
    ("FROM a\nRUN --mount=type=cache,target=/x echo", "line 2: RUN --mount"),
    ("FROM a\nCOPY --from=build /a /b", "line 2: COPY --from"),
    ("FROM a\nCOPY onlyone", "line 2: COPY needs a source and a destination"),
    ("FROM a\nRUN <<EOF\necho\nEOF", "heredocs"),
    ("FROM a\nENV =x", "line 2"),
    ("", "no instructions"),
])
def test_unsupported_input_is_refused_with_its_line(text: str, needle: str) -> None:
    with pytest.raises(DockerfileError, match=needle.replace("(", r"\(")):
        parse(text)


def test_variable_expansion() -> None:
    v = {"A": "1", "EMPTY": ""}
    assert expand("$A-${A}-${B:-dflt}-${A:+alt}-${EMPTY:-e}-\\$A", v) == "1-1-dflt-alt-e-$A"
    assert expand("$UNKNOWN/x", v) == "/x"
    with pytest.raises(SubstitutionError):
        expand("${A/x/y}", v)
