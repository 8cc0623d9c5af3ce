"""Load and validate scenarios/*.yaml into a ScenarioLibrary, reporting errors by file and line."""

import re
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.scenarios.schema import Scenario, ScenarioSet

SCENARIO_FILE_PATTERNS = ("*.yaml", "*.yml")


class ScenarioFileError(Exception):
    """A scenario file (or directory) that cannot be used, with where the problem is."""

    def __init__(
        self, path: Path, message: str, *, line: int | None = None, location: str = ""
    ) -> None:
        self.path = path
        self.line = line
        self.location = location
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        what = f"{self.location}: {self.message}" if self.location else self.message
        return f"{where}: {what}"


class DuplicateScenarioError(ValueError):
    """Two scenario sets define the same scenario id or set id."""

    def __init__(self, kind: str, value: str, first: ScenarioSet, second: ScenarioSet) -> None:
        self.kind = kind
        self.value = value
        self.first = first
        self.second = second
        super().__init__(
            f"{kind} {value!r} is defined by set {first.set_id!r} and set {second.set_id!r}"
        )


class ScenarioLibrary:
    """Every loaded scenario, looked up by id."""

    def __init__(self, sets: Iterable[ScenarioSet]) -> None:
        self._sets: dict[str, ScenarioSet] = {}
        self._scenarios: dict[str, tuple[ScenarioSet, Scenario]] = {}
        for scenario_set in sets:
            if scenario_set.set_id in self._sets:
                first = self._sets[scenario_set.set_id]
                raise DuplicateScenarioError("set", scenario_set.set_id, first, scenario_set)
            self._sets[scenario_set.set_id] = scenario_set
            for scenario in scenario_set.scenarios:
                if scenario.id in self._scenarios:
                    first = self._scenarios[scenario.id][0]
                    raise DuplicateScenarioError("scenario id", scenario.id, first, scenario_set)
                self._scenarios[scenario.id] = (scenario_set, scenario)

    def get(self, scenario_id: str) -> Scenario | None:
        """The scenario with this id, if any."""
        found = self._scenarios.get(scenario_id)
        return found[1] if found else None

    def set_of(self, scenario_id: str) -> str | None:
        """The id of the set the scenario belongs to, if the scenario exists."""
        found = self._scenarios.get(scenario_id)
        return found[0].set_id if found else None

    def sets(self) -> list[ScenarioSet]:
        """The sets, ordered by set id."""
        return [self._sets[set_id] for set_id in sorted(self._sets)]

    def all(self) -> list[tuple[str, Scenario]]:
        """(set id, scenario) pairs ordered by set id, then scenario number."""
        return [(s.set_id, scenario) for s in self.sets() for scenario in _by_no(s)]

    def public(self) -> list[dict[str, Any]]:
        """The list `GET /api/scenarios` returns."""
        return [scenario.public(set_id) for set_id, scenario in self.all()]


def load_scenario_file(path: Path) -> ScenarioSet:
    """Parse and validate one scenario file."""
    root, data = _parse(path)
    if data is None:
        raise ScenarioFileError(
            path, "the file is empty; expected a mapping with keys set, title, scenarios", line=1
        )
    if not isinstance(data, dict):
        raise ScenarioFileError(
            path,
            f"expected a mapping with keys set, title, scenarios at the top level, "
            f"got {type(data).__name__}",
            line=_line(root),
        )
    try:
        return ScenarioSet.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        raise ScenarioFileError(
            path, error["msg"], line=_line_of(root, loc), location=_format_loc(loc)
        ) from None


def load_scenario_dir(directory: Path) -> ScenarioLibrary:
    """Load every scenario file of `directory`; any broken file fails the whole load."""
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise ScenarioFileError(directory, f"the scenario directory {problem}")
    paths = sorted({p for pattern in SCENARIO_FILE_PATTERNS for p in directory.glob(pattern)})
    if not paths:
        raise ScenarioFileError(
            directory, f"no scenario files ({', '.join(SCENARIO_FILE_PATTERNS)}) in the directory"
        )
    loaded = [(path, load_scenario_file(path)) for path in paths]
    try:
        return ScenarioLibrary(scenario_set for _, scenario_set in loaded)
    except DuplicateScenarioError as exc:
        origin = {id(scenario_set): path for path, scenario_set in loaded}
        first, second = origin[id(exc.first)], origin[id(exc.second)]
        if exc.kind == "set":
            loc: tuple[int | str, ...] = ("set",)
        else:
            index = next(i for i, s in enumerate(exc.second.scenarios) if s.id == exc.value)
            loc = ("scenarios", index, "id")
        raise ScenarioFileError(
            second,
            f"{exc.kind} {exc.value!r} is already defined in {first}",
            line=_line_of(_parse(second)[0], loc),
            location=_format_loc(loc),
        ) from None


def _by_no(scenario_set: ScenarioSet) -> list[Scenario]:
    return sorted(scenario_set.scenarios, key=lambda s: s.no)


_BOOL_TAG = "tag:yaml.org,2002:bool"
# libyaml's parser reads the scenario files ten times faster than the pure-Python one (0.14 s
# of every start for the JNSA file); the pure one stays for a PyYAML built without it.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ScenarioYamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans that refuses a key repeated in one mapping.

    YAML 1.1 reads `no`, `yes`, `on` and `off` as booleans, which would turn the scenario key
    `no` into False; only true/false are booleans here. A repeated key would otherwise
    silently replace the first, e.g. a second `body:` hiding the first.
    """

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


_ScenarioYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ScenarioYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _parse(path: Path) -> tuple[Node | None, Any]:
    """The composed node tree (for line numbers) and the plain data of a YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioFileError(path, f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ScenarioFileError(path, f"cannot read the file: {exc.strerror}") from None
    loader = _ScenarioYamlLoader(text)
    try:
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ScenarioFileError(
            path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError(path, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _line(node: Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _line_of(root: Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of the YAML node at a pydantic error location.

    A missing key reports its parent mapping's line; a mapping key reports the key's line,
    where the author looks for it, rather than the value's (a block scalar starts below).
    """
    node, line = root, _line(root)
    for part in loc:
        if isinstance(node, MappingNode) and isinstance(part, str):
            found = next(
                ((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part),
                None,
            )
            if found is None:
                # "[key]" (a bad mapping key) and missing keys stay on the line reached so far.
                break
            node, line = found[1], _line(found[0])
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            break
    return line


def _format_loc(loc: tuple[int | str, ...]) -> str:
    """`scenarios[3].title.ja` from ("scenarios", 3, "title", "ja")."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else part
    return text
