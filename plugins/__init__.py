"""The bundled plugins; they register through the same hooks as any other."""
