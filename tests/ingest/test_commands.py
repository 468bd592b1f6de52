"""Command handlers of the imports, through a parser built with `add_parsers` (as `priceintel` will)."""

from __future__ import annotations

import argparse
import json

import pytest

from priceintel.ingest.commands import add_parsers
from priceintel.ingest.result import IngestError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="priceintel")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    """Archive imports under tmp_path (the default root is the data dir)."""
    monkeypatch.setenv("PRICEINTEL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_catalog_and_sales_import_commands(db, write, data_dir, capsys):
    catalog = write("catalog.csv", "id,title,price\nA1,Blender,15\nA2,,3\n")
    assert _run(["catalog", "import", str(catalog), "--currency", "USD"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("catalog.csv: 2 row(s): 1 inserted, 0 updated, 0 unchanged, 1 rejected (partial;")
    assert out[1] == "catalog.csv row 3, column title: missing title"
    assert len(list((data_dir / "imports" / "catalog").iterdir())) == 1
    sales = write("sales.csv", "sku,date,units\nA1,2024-01-01,3\n")
    assert _run(["sales", "import", str(sales), "--strict"]) == 0
    assert "1 inserted" in capsys.readouterr().out


def test_refusal_raises_and_all_rejected_exits_1(db, write, data_dir, capsys):
    path = write("catalog.csv", "id,title\nA1,\n")
    with pytest.raises(IngestError, match=r"^catalog.csv: refused \(strict\)"):
        _run(["catalog", "import", str(path), "--strict"])
    assert _run(["catalog", "import", str(path)]) == 1
    assert "(failed;" in capsys.readouterr().out


def test_encoding_option(db, write, data_dir, capsys):
    path = write("catalog.csv", "id,title\nA1,Caf\xe9\n".encode("cp1252"))
    with pytest.raises(IngestError, match="not UTF-8 text"):
        _run(["catalog", "import", str(path)])
    assert _run(["catalog", "import", str(path), "--encoding", "cp1252"]) == 0


def test_watch_commands(db, write, data_dir, capsys):
    path = write("watch.csv", "url\nhttps://www.walmart.com/ip/1\n")
    assert _run(["watch", "import", str(path)]) == 0
    assert _run(["watch", "add", "https://shop.example.co.uk/p/1", "--retailer", "Example"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "watch 2 added: https://shop.example.co.uk/p/1 (retailer example)" in out
    # config/shops.yaml lists amazon, walmart and target: "example" is fetched with the generic adapter
    assert any("retailer 'example' is not in shops.yaml" in line for line in out)
    assert _run(["watch", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(w["watch_id"], w["retailer"], w["active"]) for w in listed] == [(2, "example", True), (1, "walmart", True)]
    assert _run(["watch", "remove", "1"]) == 0
    assert capsys.readouterr().out == "watch 1 removed\n"
    assert _run(["watch", "list", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("watch_id,retailer,url,sku,active,status")
    assert _run(["watch", "list", "--all"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["watch_id", "retailer", "url", "sku", "active", "status"] and len(table) == 3
    assert _run(["watch", "remove", "https://www.walmart.com/ip/1", "--purge"]) == 0
    assert capsys.readouterr().out == "watch https://www.walmart.com/ip/1 deleted with its fetch history\n"
