"""Write tests/durations.json, the seconds each test file took (setup and teardown included), from a pytest
JUnit XML report: `python tests/_durations.py junit.xml` after e.g. `PYTEST_ADDOPTS=--junitxml=junit.xml make
test`. conftest.py hands the files of few but long tests out first, so the two workers of `make test` end close
together."""

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def file_seconds(junit: str) -> dict[str, float]:
    seconds: Counter[str] = Counter()
    root = Path(__file__).resolve().parent.parent
    for case in ET.parse(junit).iter("testcase"):
        parts = case.get("classname", "").split(".")  # tests.pipeline.test_live[.TestClass]
        while len(parts) > 1 and not (root / ("/".join(parts) + ".py")).is_file():
            parts.pop()
        seconds["/".join(parts) + ".py"] += float(case.get("time") or 0)
    return {name: round(s, 1) for name, s in seconds.most_common()}


if __name__ == "__main__":
    out = Path(__file__).with_name("durations.json")
    out.write_text(json.dumps(file_seconds(sys.argv[1]), indent=1) + "\n")
    print(f"{out}: {len(json.loads(out.read_text()))} files")
