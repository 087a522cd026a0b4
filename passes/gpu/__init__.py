"""GPU code generation: the passes of `kiln-codegen-vulkan` (and the other GPU pipelines)."""
