"""The mlcheck tab in TensorBoard: every finding, layer statistic and suspect sample of a run on one page.

TensorBoard finds the plugin through the `tensorboard_plugins` entry point and imports
`mlcheck.tensorboard_plugin.plugin`; nothing here is imported by `import mlcheck`.
"""
