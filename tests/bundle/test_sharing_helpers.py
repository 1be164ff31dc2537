"""The sharing helpers: the bundle's pip requirements and the zip that ``monai.bundle download`` unpacks."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

import monai_fusion
from monai_fusion.bundle.sharing import bundle_requirements, main, pack_bundle, write_large_files

from .conftest import BUNDLE

META = BUNDLE / "configs" / "metadata.json"


def test_requirements_pin_the_frameworks_and_every_required_package() -> None:
    meta = json.loads(META.read_text(encoding="utf-8"))
    lines = bundle_requirements(META)
    frameworks = [f"{name}=={meta[key]}" for name, key in (("monai", "monai_version"), ("torch", "pytorch_version"))]
    assert lines[:3] == [*frameworks, f"numpy=={meta['numpy_version']}"]
    assert f"monai-fusion=={monai_fusion.__version__}" in lines
    assert len(lines) == 3 + len(meta["required_packages_version"])


def test_requirements_of_bad_metadata_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps({"monai_version": "1.6.1"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"metadata.json: expected monai_version, pytorch_version, numpy_version"):
        bundle_requirements(bad)
    with pytest.raises(ValueError, match="cannot read the bundle metadata"):
        bundle_requirements(tmp_path / "missing.json")


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A copy of the bundle with what runs leave behind: eval/, runs/ and checkpoints in models/."""
    root = tmp_path / "multimodal_fusion"
    shutil.copytree(BUNDLE, root, ignore=shutil.ignore_patterns("eval", "runs", "__pycache__"))
    for rel in ("eval/metrics.csv", "runs/poster/poster.pt", "models/checkpoint_last.pt", "models/model_best.pt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"run output")
    return root


def test_the_zip_holds_the_bundle_without_run_outputs_and_monai_downloads_it(bundle: Path, tmp_path: Path) -> None:
    from monai.bundle import download

    archive = pack_bundle(bundle, tmp_path / "out" / "multimodal_fusion.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert all(n.startswith("multimodal_fusion/") for n in names)
    rel = {n.split("/", 1)[1] for n in names}
    assert {"configs/train.json", "configs/metadata.json", "models/model.pt", "models/model.ts", "LICENSE"} <= rel
    assert "docs/data_license.txt" in rel and "models/README.md" in rel
    assert not {r for r in rel if r.startswith(("eval/", "runs/", "models/checkpoint", "models/model_best"))}
    download(name="multimodal_fusion", url=archive.resolve().as_uri(), bundle_dir=str(tmp_path / "downloaded"))
    got = tmp_path / "downloaded" / "multimodal_fusion"
    assert (got / "models" / "model.pt").read_bytes() == (BUNDLE / "models" / "model.pt").read_bytes()
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == sorted(rel)


def test_packing_refuses_changed_weights_and_an_existing_zip(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.zip"
    pack_bundle(bundle, out)
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        pack_bundle(bundle, out)
    (bundle / "models" / "model.pt").write_bytes(b"retrained")
    with pytest.raises(ValueError, match=r"model.pt: sha256 differs from shipped_weights"):
        pack_bundle(bundle, out, overwrite=True)
    assert zipfile.ZipFile(out).getinfo("multimodal_fusion/models/model.pt").file_size > 1000  # the old zip is kept
    with pytest.raises(ValueError, match="not a bundle folder"):
        pack_bundle(tmp_path, tmp_path / "c.zip")


def test_a_zoo_copy_takes_another_name_and_runs_under_it(bundle: Path, tmp_path: Path) -> None:
    from monai.bundle import ConfigParser, download

    archive = pack_bundle(bundle, tmp_path / "zoo.zip", name="brain_mri_ct_pet_spect_fusion")
    assert {n.split("/", 1)[0] for n in zipfile.ZipFile(archive).namelist()} == {"brain_mri_ct_pet_spect_fusion"}
    download(name="brain_mri_ct_pet_spect_fusion", url=archive.resolve().as_uri(), bundle_dir=str(tmp_path / "zoo"))
    parser = ConfigParser()
    parser.read_config(str(tmp_path / "zoo" / "brain_mri_ct_pet_spect_fusion" / "configs" / "inference.json"))
    parser["bundle_root"] = str(tmp_path / "zoo" / "brain_mri_ct_pet_spect_fusion")
    assert Path(parser.get_parsed_content("ckpt_path")).is_file()
    with pytest.raises(ValueError, match="bundle name 'brain-fusion': expected letters, digits and underscores"):
        pack_bundle(bundle, tmp_path / "bad.zip", name="brain-fusion")


def test_the_command_line_prints_requirements_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["requirements", str(META)]) == 0
    assert capsys.readouterr().out.splitlines() == bundle_requirements(META)
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", str(tmp_path), str(tmp_path / "x.zip")])
    assert exit_info.value.code == 2 and "not a bundle folder" in capsys.readouterr().err


def test_large_files_yml_lets_monai_fetch_and_check_the_weights_of_a_copy_without_them(tmp_path: Path) -> None:
    """The zoo's way: weights out of git, listed in large_files.yml; ``download_large_files`` restores them."""
    pytest.importorskip("yaml", reason="MONAI reads large_files.yml with PyYAML")
    from monai.bundle import download_large_files

    hosted = tmp_path / "hosted"
    hosted.mkdir()
    copy = tmp_path / "multimodal_fusion"
    shutil.copytree(BUNDLE / "configs", copy / "configs")
    for name in ("model.pt", "model.ts"):
        shutil.copy(BUNDLE / "models" / name, hosted / name)
    out = write_large_files(copy, hosted.as_uri())
    assert out == copy / "large_files.yml" and not (copy / "models").exists()
    download_large_files(bundle_path=str(copy))
    for name in ("model.pt", "model.ts"):
        assert (copy / "models" / name).read_bytes() == (BUNDLE / "models" / name).read_bytes()
    (hosted / "model.pt").write_bytes(b"tampered")
    (copy / "models" / "model.pt").unlink()
    with pytest.raises(Exception, match="sha256 hash check of downloaded file failed"):
        download_large_files(bundle_path=str(copy))
