"""CPU code generation: the rewrites of `kiln-codegen-cpu`, measured on CPUs only."""
