"""The bundle's surface code: ``python -m monai.bundle`` argv, override checks, one-line errors, and the guard
of its shipped weights. ``sharing`` (requirements, the downloadable zip) is imported on its own, as the module
``python -m monai_fusion.bundle.sharing`` runs."""

from .cli import (
    bundle_root_from_cli,
    check_cli_overrides,
    check_training_settings,
    install_input_error_hook,
    parse_bundle_argv,
)
from .weights import export_network_weights, protect_shipped_weights, sha256_file, shipped_weights

__all__ = [
    "export_network_weights",
    "protect_shipped_weights",
    "sha256_file",
    "shipped_weights",
    "bundle_root_from_cli",
    "check_cli_overrides",
    "check_training_settings",
    "install_input_error_hook",
    "parse_bundle_argv",
]
