"""freshlm.disk_usage.tree_bytes: what deleting a folder frees, as the logs report it."""

from freshlm.disk_usage import tree_bytes


def test_it_counts_the_files_under_a_folder_and_not_what_a_link_points_at(tmp_path):
    folder = tmp_path / "run"
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "config.json").write_bytes(b"x" * 10)
    (folder / "checkpoint" / "weights.bin").write_bytes(b"w" * 1000)
    outside = tmp_path / "big.bin"
    outside.write_bytes(b"b" * 5000)
    (folder / "link.bin").symlink_to(outside)
    assert tree_bytes(folder) == 1010
    assert tree_bytes(tmp_path / "missing") == 0
