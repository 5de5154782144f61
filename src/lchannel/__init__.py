"""lchannel: the deep learning channel toolkit."""
