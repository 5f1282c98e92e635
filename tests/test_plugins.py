"""Plugins and the registry (issue 13): the registry imports nothing of semsim's; built-ins load
with the package; a user's module comes in by entry point or ``--plugin``; a learned codec's
preset is typed and its shipped weights come by ``weights="pretrained"``."""
import ast
import sys

import pytest

from conftest import REPO

from semsim import Budget, build_codec, registry
from semsim.cli import main
from semsim.errors import ConfigError


def test_the_registry_imports_only_the_errors_of_semsim():
    tree = ast.parse((REPO / "semsim" / "registry.py").read_text())
    own = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    own += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names if a.name.startswith("semsim")]
    assert own == ["errors"]


def test_every_built_in_is_registered_by_importing_the_registry_alone(tmp_path):
    import json
    import subprocess

    code = "import json, semsim.registry as r; print(json.dumps({k: r.names(k) for k in r.KINDS}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    seen = json.loads(out.stdout)
    builtin = {"channel": {"awgn", "rayleigh", "rician", *(f"{f}-{m}" for f in ("tdl", "cdl") for m in "abcde")},
               "codec": {"semantic", "deepjscc", "adjscc", "witt", "deeplab-jscc", "jpeg+ldpc+fcn", "jpeg+ldpc",
                         "jpeg+capacity"},
               "dataset": {"builtin", "procedural", "kodak", "bsds500", "folder", "voc", "camvid"}}
    for kind, expected in builtin.items():
        assert expected <= set(seen[kind]) <= set(registry.names(kind)), kind


def test_register_names_a_learned_codec_once():
    for name in ("semantic", "deepjscc", "adjscc", "witt", "deeplab-jscc", "jpeg+ldpc+fcn"):
        cls, _ = registry.lookup("codec", name)
        assert cls.method == name


def _write_plugin(folder, module, channel):
    (folder / f"{module}.py").write_text(
        "from semsim.channels import AWGNChannel\nfrom semsim.registry import register\n\n"
        f"@register('channel', {channel!r})\nclass Mine(AWGNChannel):\n    name = {channel!r}\n")


def _install_entry_point(tmp_path, monkeypatch, dist_name: str, name: str, module: str) -> None:
    """A distribution on ``sys.path`` whose ``semsim.plugins`` entry point ``name`` is ``module``,
    and the registry told to load entry points again."""
    dist = tmp_path / f"{dist_name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[semsim.plugins]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)


def test_an_entry_point_of_the_semsim_plugins_group_is_loaded_before_the_first_lookup(tmp_path, monkeypatch):
    _write_plugin(tmp_path, "ep_plugin_mod", "ep-test-channel")
    _install_entry_point(tmp_path, monkeypatch, "ep-plugin", "mine", "ep_plugin_mod")
    assert "ep-test-channel" in registry.names("channel")
    assert registry.build("channel", "ep-test-channel").name == "ep-test-channel"


def test_a_broken_entry_point_is_one_error_naming_its_module(tmp_path, monkeypatch):
    (tmp_path / "broken_ep_mod.py").write_text("raise RuntimeError('boom')\n")
    _install_entry_point(tmp_path, monkeypatch, "broken-ep", "broken", "broken_ep_mod")
    with pytest.raises(ConfigError, match="cannot load plugin 'broken' \\(module 'broken_ep_mod'.*boom"):
        registry.names("codec")


def test_the_plugin_option_loads_a_module_for_the_command(tmp_path, monkeypatch, capsys):
    _write_plugin(tmp_path, "cli_plugin_mod", "cli-test-channel")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["list", "--plugin", "cli_plugin_mod"]) == 0
    assert "cli-test-channel" in capsys.readouterr().out
    assert main(["validate", "no-such.yaml", "--plugin", "no_such_plugin_module"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semsim: error: cannot load plugin module 'no_such_plugin_module'") and "\n" not in err


def test_a_misspelt_preset_key_is_named_at_load_time_with_the_valid_keys(tmp_path):
    from semsim.baselines.deepjscc import DeepJSCC

    presets = tmp_path / "presets.yaml"
    presets.write_text("deepjscc:\n  small: {widths: [8, 8, 8, 8], strides: [2, 2, 1, 1, 1], kernal_size: 5, "
                       "channels: 8}\n")

    class Typo(DeepJSCC):
        presets_file = presets

    with pytest.raises(ConfigError, match="deepjscc preset 'small' \\(presets.yaml\\): unknown key 'kernal_size'; "
                                          "valid keys: 'widths', 'strides', 'kernel_size', 'channels'"):
        Typo(Budget("cbr", 1 / 16))
    presets = tmp_path / "other.yaml"  # files are read once per process
    presets.write_text("deepjscc:\n  small: {widths: [8, 8, 8, 8], strides: [2, 2, 1, 1, 1], kernel_size: five, "
                       "channels: 8}\n")
    Typo.presets_file = presets
    with pytest.raises(ConfigError, match="kernel_size: expected int, got 'five'"):
        Typo(Budget("cbr", 1 / 16))


def test_a_typed_preset_keeps_the_plain_data_that_weights_and_hashes_hold():
    import dataclasses

    from semsim.presets import load_preset

    codec = build_codec({"name": "semantic", "meta": True}, Budget("cbr", 1 / 16))
    assert codec.arch.dit.width == codec.cfg["dit"]["width"]
    assert dataclasses.asdict(codec.arch) == codec.cfg
    assert codec.cfg == load_preset(codec.presets_file, "semantic", "small")
    assert codec.config() == {"method": "semantic", "preset": "small", **codec.cfg}


def test_weights_pretrained_is_the_shipped_file_of_the_preset():
    from semsim.transmit import default_weights

    codec = build_codec({"name": "deepjscc", "weights": "pretrained"}, Budget("cbr", 1 / 16))
    assert codec.weights == default_weights("deepjscc", "small").name == "deepjscc-small.safetensors"
    assert codec.train_channel == "awgn"
    with pytest.raises(ConfigError, match="no shipped weights for method 'deepjscc' at preset 'paper'"):
        build_codec({"name": "deepjscc", "preset": "paper", "weights": "pretrained", "meta": True},
                    Budget("cbr", 1 / 16))
