"""Developer scripts (run from the repository root): the mutation check of the property tests."""
