import polars as pl

from followaudit.sources.synth import SynthSpec, generate, write_synth


def test_synth_is_deterministic_and_realistic(tmp_path):
    a = generate(SynthSpec(3000, seed=5))
    b = generate(SynthSpec(3000, seed=5))
    assert a.equals(b)
    assert a["follow_rank"].to_list() == list(range(3000))
    # Nobody follows before their account exists.
    assert (a["followed_at"] > a["created_at"]).all()
    truth = dict(a["truth_label"].value_counts().iter_rows())
    assert truth["fake"] == 600
    # Bought followers follow consecutively: each batch is one contiguous run of ranks.
    runs = a.filter(pl.col("batch") > 0).group_by("batch").agg(pl.col("follow_rank").min().alias("lo"), pl.col("follow_rank").max().alias("hi"), pl.len())
    for lo, hi, n in runs.select("lo", "hi", "len").iter_rows():
        assert hi - lo + 1 == n
    path = tmp_path / "s.parquet"
    write_synth(500, path, seed=1)
    assert pl.read_parquet(path).height == 500
