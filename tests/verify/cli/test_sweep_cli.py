"""``logitrank sweep run|show|plot`` through the CLI's main()."""

import pytest

from logitrank.verify.cli import main

SPEC = 'name = "cli"\ntask = "logit_ranks"\nseeds = 2\n[fixed]\nT = 3\n[grid]\nV = [2, 3]\nd = [1, 2]\n'


def test_run_show_plot(tmp_path, capsys):
    spec, db = tmp_path / "s.toml", tmp_path / "db.sqlite"
    spec.write_text(SPEC)
    assert main(["sweep", "run", str(spec), "--store", str(db)]) == 0
    assert "8 done, 0 failed, 0 cached of 8" in capsys.readouterr().out
    assert main(["sweep", "run", str(spec), "--store", str(db), "--jobs", "2"]) == 0
    assert "0 done, 0 failed, 8 cached of 8" in capsys.readouterr().out
    assert main(["sweep", "show", "--store", str(db), "--metrics", "max_rank"]) == 0
    out = capsys.readouterr().out
    assert "median [min, max] over seeds" in out and "2 [2, 2]" in out  # 2 seeds: a range, not an IQR
    assert main(["sweep", "plot", "cli", "--store", str(db), "--x", "d", "--y", "max_rank", "--hue", "V",
                 "--where", "T=3"]) == 0
    assert (tmp_path / "figures" / "cli_max_rank_vs_d_by_V_T=3.png").is_file()  # the filter is in the file name
    assert main(["sweep", "plot", "--store", str(db), "--x", "d", "--y", "max_rank", "--hue", "V", "--heatmap"]) == 0


@pytest.mark.parametrize("argv, pattern", [
    (["sweep", "show", "--store", "{tmp}/none.sqlite"], "does not exist"),
    (["sweep", "run", "{tmp}/bad.toml", "--store", "{tmp}/x.sqlite"], r"unknown key\(s\) \['sedes'\]; allowed keys"),
    (["sweep", "run", "{tmp}/bad.toml", "--backend", "dask"], r"unknown key|needs scheduler"),
])
def test_usage_errors_exit_2_with_the_reason(tmp_path, capsys, argv, pattern):
    (tmp_path / "bad.toml").write_text('name = "b"\ntask = "noop"\nsedes = 2\n[grid]\nd = [1]\n')
    with pytest.raises(SystemExit) as exc:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exc.value.code == 2
    import re

    assert re.search(pattern, capsys.readouterr().err)
