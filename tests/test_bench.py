"""bench/: the tables it writes into docs/performance.md, and nothing else there (no GPU, no timing)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PERFORMANCE = ROOT / "docs" / "performance.md"


@pytest.fixture(scope="module")
def bench(import_file):
    return import_file("bench/run.py")


def run_of(ms: float, seconds: float, peak: float, image_sum: float = 1.0) -> dict:
    return {"seconds": seconds, "first_seconds": seconds, "ms_per_token": ms, "vqgan_seconds": 0.5,
            "peak_mib": peak, "image_sum": image_sum, "repeats_same": 1.0}


def fake_runs() -> dict:
    """Two repeats of one CPU config and one CUDA config, as the benchmark saves them."""
    floor = {"ms_per_token": 50.0, "gigabytes": 0.87, "peak_mib": 900.0}
    gpu_floor = {"ms_per_token": 1.0, "gigabytes": 2.9, "copy_gb_per_s": 2900.0, "device_name": "GPU X"}
    ours_gpu = run_of(2.0, 1.0, 6000.0) | {"device_name": "GPU X", "graph_equals_static": 1.0}
    return {
        "float32:1:cpu": {"dalle_core": [run_of(100, 30, 2300), run_of(110, 33, 2300)],
                          "min-dalle": [run_of(200, 60, 2400), run_of(220, 66, 2400)], "floor": [floor, floor]},
        "float16:1:cuda": {"dalle_core": [ours_gpu], "min-dalle": [{"error": "RuntimeError: boom"}],
                           "floor": [gpu_floor]},
    }


META = {"machine": "x86_64, 2 cores", "threads": 1, "torch": "2.13.0", "date": "2026-01-01 00:00", "repeats": 2,
        "load": 0.5, "model": "mega", "calls": 3, "command": "python bench/run.py --test"}


def table_blocks(text: str) -> dict[str, str]:
    return dict(re.findall(r"<!-- bench:table ([\w-]+) -->\n(.*?)<!-- /bench:table -->", text, re.DOTALL))


def test_tables_replace_only_what_lies_between_their_markers(bench, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nprose\n<!-- bench:table a -->\nold\n<!-- /bench:table -->\nmore prose\n"
                    "<!-- bench:table b -->\n<!-- /bench:table -->\nend\n", encoding="utf-8")
    bench.write_tables(page, {"a": ["| x |", "|---|", "| 1 |"], "b": ["new"]})
    expected = ("# Title\n\nprose\n<!-- bench:table a -->\n| x |\n|---|\n| 1 |\n<!-- /bench:table -->\nmore prose\n"
                "<!-- bench:table b -->\nnew\n<!-- /bench:table -->\nend\n")
    assert page.read_text(encoding="utf-8") == expected
    bench.write_tables(page, {"a": ["| x |", "|---|", "| 1 |"], "b": ["new"]})
    assert page.read_text(encoding="utf-8") == expected  # the same tables again: the same file
    with pytest.raises(ValueError, match="bench:table c"):
        bench.write_tables(page, {"c": ["x"]})
    assert page.read_text(encoding="utf-8") == expected and [p.name for p in tmp_path.iterdir()] == ["page.md"]


def test_a_run_rewrites_the_tables_and_keeps_the_prose(bench, tmp_path):
    copy = tmp_path / "performance.md"
    copy.write_text(PERFORMANCE.read_text(encoding="utf-8"), encoding="utf-8")
    tables = bench.report_tables(bench.summarize_all(fake_runs()), META)
    assert set(tables) == set(table_blocks(PERFORMANCE.read_text(encoding="utf-8")))  # a place for each table
    bench.write_tables(copy, tables)
    before, after = PERFORMANCE.read_text(encoding="utf-8"), copy.read_text(encoding="utf-8")
    prose = r"<!-- bench:table ([\w-]+) -->\n.*?<!-- /bench:table -->"
    assert re.sub(prose, "", before, flags=re.DOTALL) == re.sub(prose, "", after, flags=re.DOTALL)
    blocks = table_blocks(after)
    # medians over the repeats; dalle_core's time ratio within each repeat (30/60 and 33/66), then the median
    assert "| cpu | float32 | 1 | dalle_core | 105 | 31.5 | 0.5 | 2300 | 0.50 | 2.10 |" in blocks["cpu"]
    assert "| cpu | float32 | 1 | floor | 50 |  |  |  |  | 1.00 | 1.00 |  |" in blocks["cpu"]
    assert blocks["cpu"].startswith("Machine: x86_64, 2 cores, 1 torch thread(s), torch 2.13.0.")
    assert "| cpu | float32 | 1 | 2300 | 2400 | -4.2% |" in blocks["cpu-memory"]
    assert "| float32 | 0.87 GB |" in blocks["cpu-floor"]
    assert "| GPU X | mega | float16 | 1 | min-dalle | fails: RuntimeError: boom |" in blocks["gpu"]
    assert "| GPU X | mega | float16 | 1 | dalle_core | 1.00 | 1.00 | 2.00 | 0.50 | 6000 |  | 2.0 | yes |  | yes |" \
        in blocks["gpu"]
    assert "| GPU X | float16 | 2.90 | 2900 | 1.00 | 0.26 |" in blocks["gpu-floor"]


def test_the_cache_table_is_computed_from_the_code(bench):
    """docs/performance.md's cache sizes are dalle_core.memory.attention_state_bytes's."""
    committed = table_blocks(PERFORMANCE.read_text(encoding="utf-8"))["cache"]
    assert committed.strip("\n").splitlines() == bench.cache_table()


def test_prose_is_documentation_not_a_log():
    text = PERFORMANCE.read_text(encoding="utf-8")
    for words in (r"\bissue \d+", r"this session", r"while writing this", r"before this design"):
        assert not re.search(words, text, re.IGNORECASE), words


def test_bad_configs_one_line_exit_2(bench, capsys):
    assert bench.main(["--configs", "float32:x"]) == 2
    err = capsys.readouterr().err
    assert "float32:x" in err and len(err.strip().splitlines()) == 1
    assert bench.main(["--report-only", "--raw", "/nonexistent/runs.json"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_gpu_check_prints_its_table_and_capture_times(import_file, capsys):
    gpu_check = import_file("bench/gpu_check.py")
    entry = run_of(2.0, 1.0, 6000.0) | {"all_seconds": [1.0], "device_name": "GPU X", "graph_equals_static": 1.0,
                                        "capture_seconds": 0.25}
    results = {"float16": {"dalle_core": {"load_seconds": 3.0, "1": entry},
                           "min-dalle": {"error": "RuntimeError: boom"}}}
    gpu_check.print_table(results, [1])
    out = capsys.readouterr().out
    assert "| GPU X | float16 | 1 | dalle_core | 1.00 | 1.00 | 1.00 | 6000 | yes |  | yes |" in out
    assert "| float16 | 1 | min-dalle | fails: RuntimeError: boom |" in out
    assert "one graph capture took 1 image(s) 250 ms" in out
    assert gpu_check.main(["--grids", "0"]) == 2 and "--grids" in capsys.readouterr().err
