"""Human sections: text people write inside the generated DPIA, kept across regenerations.

In the Markdown a human section is delimited as

    <!-- human:interests -->
    ...whatever people wrote...
    <!-- /human -->

Generation reads these back from the existing file and puts them in place again; the HTML carries
the same markers around its rendering, so a staleness check can ignore what people wrote.
"""

from __future__ import annotations

import re

_OPEN = re.compile(r"<!-- human:([a-z0-9][a-z0-9-]*) -->")
_CLOSE = "<!-- /human -->"
_BLOCK = re.compile(r"<!-- human:([a-z0-9][a-z0-9-]*) -->\n?(.*?)\n?<!-- /human -->", re.DOTALL)


class HumanSectionError(ValueError):
    """The human-section markers in a document are broken; regenerating would lose text."""


def open_marker(section_id: str) -> str:
    return f"<!-- human:{section_id} -->"


def close_marker() -> str:
    return _CLOSE


def extract(document: str) -> dict[str, str]:
    """Return {section id: text people wrote} from a generated document; refuse broken markers."""
    opens = _OPEN.findall(document)
    if len(opens) != document.count(_CLOSE):
        raise HumanSectionError(
            f"{len(opens)} '<!-- human:... -->' markers but {document.count(_CLOSE)} '{_CLOSE}' markers"
        )
    if len(set(opens)) != len(opens):
        raise HumanSectionError(
            "a human section appears twice: " + ", ".join(sorted({i for i in opens if opens.count(i) > 1}))
        )
    found = {m.group(1): m.group(2) for m in _BLOCK.finditer(document)}
    if len(found) != len(opens):
        raise HumanSectionError("a human section is not closed before the next one opens")
    return found


def mask(document: str) -> str:
    """Return the document with the contents of every human section left out (for comparison)."""
    return _BLOCK.sub(lambda m: f"{open_marker(m.group(1))}{_CLOSE}", document)
