"""Reading rendered pages the way a checker would: scripts, inline handlers, labels and controls."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

CONTROLS = ("input", "select", "textarea")
UNLABELLED_INPUT_TYPES = ("hidden", "submit", "button", "reset")


@dataclass
class PageFacts:
    scripts: list[dict[str, str | None]] = field(default_factory=list)
    inline_script_text: list[str] = field(default_factory=list)
    event_attributes: list[str] = field(default_factory=list)
    style_attributes: list[str] = field(default_factory=list)
    style_elements: int = 0
    controls: list[dict[str, str | None]] = field(default_factory=list)
    label_targets: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.facts = PageFacts()
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.facts.ids.append(attributes["id"])
        for name, _ in attrs:
            if name.startswith("on"):
                self.facts.event_attributes.append(f"{tag}[{name}]")
            if name == "style":
                self.facts.style_attributes.append(tag)
        # A JSON data block is never run (CSP does not apply to it): only scripts count.
        if tag == "script" and attributes.get("type") != "application/json":
            self.facts.scripts.append(attributes)
            self._in_script = True
        elif tag == "style":
            self.facts.style_elements += 1
        elif tag == "label" and attributes.get("for"):
            self.facts.label_targets.append(attributes["for"] or "")
        elif tag in CONTROLS:
            if tag == "input" and attributes.get("type") in UNLABELLED_INPUT_TYPES:
                return
            self.facts.controls.append({"tag": tag, **attributes})

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.facts.inline_script_text.append(data.strip()[:80])


def page_facts(html: str) -> PageFacts:
    collector = _Collector()
    collector.feed(html)
    return collector.facts
