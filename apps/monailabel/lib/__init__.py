"""The monai-fusion MONAI Label app's tasks, settings and study naming (see docs/label.md)."""
