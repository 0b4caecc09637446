"""Built-in rwmspec plugins. Each sub-package registers through the ``rwmspec`` entry-point group."""
