"""Execute a percent-format notebook (notebooks/*.py) and render it to HTML in reports/.

`python -m priceintel.pipeline.render notebooks/oj-elasticity.py reports/oj-elasticity.html`
"""

from __future__ import annotations

import sys
from pathlib import Path

from priceintel import PriceIntelError


class RenderError(PriceIntelError):
    """A notebook could not be read, executed or written; the message names the file and cell."""


def render_notebook(
    source: str | Path, html_out: str | Path, timeout: int = 600, parameters: dict | None = None
) -> Path:
    """Run `source` (percent-format .py or .ipynb) top to bottom in a fresh kernel, write HTML.

    `parameters` override the notebook's `parameters` cell (a cell is injected right after it).
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    src, out = Path(source), Path(html_out)
    if not src.is_file():
        raise RenderError(f"notebook not found: {src}")
    nb = jupytext.read(src)
    if parameters:
        at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
        if at is None:
            raise RenderError(f"{src}: no cell tagged 'parameters' to override")
        code = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(code, metadata={"tags": ["injected-parameters"]}))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise RenderError(f"{src}: a cell failed: {last}") from None
    body, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(nb))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: render SOURCE to HTML_OUT."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m priceintel.pipeline.render SOURCE.py OUT.html", file=sys.stderr)
        return 2
    try:
        print(render_notebook(args[0], args[1]))
    except PriceIntelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
