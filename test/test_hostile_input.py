"""Hostile but realistic input outside the nodes (issue 30): decompression bombs refused from the header
by the one decoder, nv12/nv21 data that does not fit its header, bags that are half written or cut in
half, files where folders go, corrupt resume checkpoints. Each says what is wrong in one line and leaves
nothing behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import yaml
from png_bomb import png_bomb

from depth_attn.cli import main as cli_main
from depth_attn.data.sample import layout_annotated_drive
from depth_attn.encodings import (
    DEFAULT_MAX_IMAGE_PIXELS,
    EncodingError,
    ImageTooLargeError,
    decode_compressed,
    from_rgb,
    to_rgb,
)
from depth_attn.imageio import read_rgb


@pytest.fixture(scope="module")
def bomb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(png_bomb(20000, 20000))  # 1.2 MB on disk, 1.2 GB of pixels
    return path


def test_a_decompression_bomb_is_refused_from_its_header(bomb_file):
    data = bomb_file.read_bytes()
    assert len(data) < 2_000_000
    with pytest.raises(ImageTooLargeError, match=r"20000x20000 \(400\.0 MP\).*limit of 50000000 pixels"):
        decode_compressed(data, "png")
    with pytest.raises(ImageTooLargeError, match="20000x20000"):
        read_rgb(bomb_file)
    with pytest.raises(ImageTooLargeError, match="20000x20000"):  # a raw frame's header is checked alike
        to_rgb(b"", "rgb8", 20000, 20000, 60000)


def test_the_default_limit_refuses_64_mp_and_passes_a_12_mp_camera():
    assert 12_000_000 < DEFAULT_MAX_IMAGE_PIXELS < 64_000_000
    with pytest.raises(ImageTooLargeError, match="8000x8000"):
        decode_compressed(png_bomb(8000, 8000), "png")
    twelve_mp = decode_compressed(png_bomb(4000, 3000), "png")  # 4000x3000: a phone's or machine-vision camera
    assert twelve_mp.shape == (3000, 4000, 3) and not twelve_mp.any()
    assert decode_compressed(png_bomb(8000, 8000, rows_per_block=100), "png", max_pixels=0).shape == (8000, 8000, 3)


def test_nv12_with_only_the_y_plane_does_not_fit_its_header(kitti_annotated):
    rgb = read_rgb(kitti_annotated / "image_02" / "0000000005.png")[:372]
    for encoding in ("nv12", "nv21"):
        planes = from_rgb(rgb, encoding)  # (372 * 3 / 2) x 1242: the Y plane, then the chroma
        assert planes.shape == (558, 1242)
        whole = to_rgb(planes.tobytes(), encoding, 1242, 372, 1242)
        assert whole.shape == (372, 1242, 3) and np.abs(whole.astype(int) - rgb).mean() < 12.0
        y_only = planes[:372].tobytes()
        with pytest.raises(EncodingError, match=r"462024 bytes \(only the Y plane\?\).*need 693036"):
            to_rgb(y_only, encoding, 1242, 372, 1242)


def test_predict_on_a_bomb_one_line_nothing_written(bomb_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(["predict", str(bomb_file), "--out", str(out), "--weights", "none"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "20000x20000" in err[0] and "50000000 pixels" in err[0], err
    assert not out.exists()


def test_files_where_folders_go_are_one_line(tmp_path, capsys, kitti_annotated):
    image = kitti_annotated / "image_02" / "0000000005.png"
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    assert cli_main(["predict", str(image), "--out", str(a_file), "--weights", "none"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file" in err[0] and "Traceback" not in err[0], err
    assert a_file.read_text() == "not a folder"


def _train_config(tmp_path, out_dir) -> str:
    from test_training import small_config

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(small_config(out_dir)))
    return str(path)


def test_train_into_a_file_is_one_line(tmp_path, capfd):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert cli_main(["train", "--config", _train_config(tmp_path, tmp_path / "unused"), "--no-progress",
                     "--set", f"output.dir={a_file}"]) == 2
    err = capfd.readouterr().err
    assert f"depth-attn train: error: output.dir {a_file} is a file" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("damage", ["random bytes", "half a checkpoint", "a pickled object"])
def test_resume_of_a_corrupt_checkpoint_never_advises_running_its_pickle(tmp_path, capfd, damage):
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.pt"
    last.parent.mkdir(parents=True)
    if damage == "random bytes":
        last.write_bytes(os.urandom(4096))
    elif damage == "half a checkpoint":
        torch.save({"model": {"w": torch.zeros(4096)}, "step": 3}, last)
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    else:
        torch.save({"model": {}, "step": np.float64(1.0), "rng": np.random.default_rng(0)}, last)
    assert cli_main(["train", "--config", _train_config(tmp_path, out), "--no-progress", "--resume", "auto"]) == 2
    err = capfd.readouterr().err
    assert f"cannot load {last} as a training checkpoint" in err, err
    assert "weights_only" not in err and "Traceback" not in err, err


def test_kitti2bag_leaves_nothing_when_a_frame_is_truncated(tmp_path, capsys):
    drive = layout_annotated_drive(tmp_path / "kitti", extra_without_gt=["0000000006", "0000000007", "0000000008",
                                                                         "0000000009"])
    images = sorted((drive / "image_02" / "data").glob("*.png"))
    assert len(images) == 7
    third = images[2]
    data = third.read_bytes()
    third.unlink()  # it may be a link to the shared frame: replace it, never write through it
    third.write_bytes(data[: len(data) // 3])
    out = tmp_path / "bags" / "drive"
    assert cli_main(["kitti2bag", str(drive), "--out", str(out)]) == 1
    assert "cannot decode image" in capsys.readouterr().err
    assert list((tmp_path / "bags").iterdir()) == []  # no bag, and nothing half-written beside it
    assert cli_main(["eval", str(out), "--weights", "none"]) == 1
    assert "bag not found" in capsys.readouterr().err


def test_eval_of_a_sqlite3_bag_cut_in_half_says_it_is_damaged(tmp_path, capsys):
    drive = layout_annotated_drive(tmp_path / "kitti")
    bag = tmp_path / "bag"
    assert cli_main(["kitti2bag", str(drive), "--out", str(bag), "--storage", "sqlite3"]) == 0
    capsys.readouterr()
    db = bag / "bag.db3"
    os.truncate(db, db.stat().st_size // 2)
    assert cli_main(["eval", str(bag), "--weights", "none"]) == 1
    err = capsys.readouterr().err
    assert f"bag {db} is damaged" in err and "no colour image topic" not in err, err


def test_overwrite_keeps_the_old_bag_until_the_new_one_is_whole(tmp_path, capsys):
    drive = layout_annotated_drive(tmp_path / "kitti")
    bag = tmp_path / "bag"
    assert cli_main(["kitti2bag", str(drive), "--out", str(bag)]) == 0
    before = sorted(p.name for p in bag.iterdir())
    broken = sorted((drive / "image_02" / "data").glob("*.png"))[1]
    data = broken.read_bytes()
    broken.unlink()
    broken.write_bytes(data[:100])
    assert cli_main(["kitti2bag", str(drive), "--out", str(bag), "--overwrite"]) == 1
    assert sorted(p.name for p in bag.iterdir()) == before and [p.name for p in tmp_path.iterdir()
                                                                if p.name.startswith(".")] == []
