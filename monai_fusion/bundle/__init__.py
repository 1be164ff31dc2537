"""The bundle's surface code: ``python -m monai.bundle`` argv, override checks, one-line errors, and the guard
of its shipped weights, and the helpers that share it (pip requirements, the downloadable zip)."""

from .cli import (
    bundle_root_from_cli,
    check_cli_overrides,
    check_training_settings,
    install_input_error_hook,
    parse_bundle_argv,
)
from .sharing import bundle_requirements, pack_bundle, write_large_files
from .weights import export_network_weights, protect_shipped_weights, sha256_file, shipped_weights

__all__ = [
    "bundle_requirements",
    "pack_bundle",
    "export_network_weights",
    "protect_shipped_weights",
    "sha256_file",
    "shipped_weights",
    "bundle_root_from_cli",
    "check_cli_overrides",
    "check_training_settings",
    "install_input_error_hook",
    "parse_bundle_argv",
    "write_large_files",
]
