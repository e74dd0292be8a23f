"""One module per sequence step type. Each is a small async unit the enrollment workflow calls;
each runs its side effects through activities and returns a ``StepResult``."""
