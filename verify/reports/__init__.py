"""The weekly class-case (类案) report: spikes, recurring places, top terms, heat and ticket outcomes."""
