"""The declared graph as a diagram: Mermaid (`mls2 pipeline graph --format mermaid`, the UI's graph)
or Graphviz source."""

from collections.abc import Mapping

from pipelines.declaration import Graph


def node_id(name: str) -> str:
    return name.replace(".", "__").replace("-", "_")


def diagram_lines(graph: Graph, output: str, status: Mapping[str, str] | None = None) -> list[str]:
    """The graph as Mermaid or Graphviz source: landing folders, then every dataset and its inputs.
    With `status` (a dataset's last flow state, or a short line about it), Mermaid nodes show it,
    are classed by its first word in lower case (`completed`, `failed`, ...)."""
    status = status or {}
    shapes = {
        "streaming_table": ("[", "]"),
        "auto_cdc": ("[[", "]]"),
        "materialized_view": ("[(", ")]"),
        "temporary_view": ("(", ")"),
    }
    edges = []
    for dataset in graph.ordered():
        sources = [f"landing.{dataset.landing.entity}"] if dataset.landing else list(dataset.depends_on)
        edges += [(source, dataset.name) for source in sources]
    if output == "mermaid":
        lines = ["flowchart LR"]
        for dataset in graph.ordered():
            left, right = shapes[dataset.kind]
            shown = f"<br/>{status[dataset.name]}" if dataset.name in status else ""
            lines.append(f'  {node_id(dataset.name)}{left}"{dataset.name}<br/>{dataset.kind}{shown}"{right}')
        lines += [f"  {node_id(source)} --> {node_id(target)}" for source, target in edges]
        for name, state in status.items():
            lines.append(f"  class {node_id(name)} {state.split()[0].lower()}")
        return lines
    lines = ["digraph mls2 {", "  rankdir=LR;", "  node [shape=box];"]
    for dataset in graph.ordered():
        shape = {"materialized_view": "cylinder", "temporary_view": "ellipse", "auto_cdc": "box3d"}.get(
            dataset.kind, "box"
        )
        lines.append(f'  "{dataset.name}" [shape={shape}, label="{dataset.name}\\n{dataset.kind}"];')
    lines += [f'  "{source}" -> "{target}";' for source, target in edges]
    return [*lines, "}"]
