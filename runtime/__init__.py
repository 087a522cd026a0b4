"""Runtime: compile linalg with IREE, load and call the result, cache and save it."""
