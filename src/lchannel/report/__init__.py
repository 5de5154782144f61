"""What people look at: figures (:mod:`.plots`, :mod:`.plots_p2`), one look per algorithm
(:mod:`.style`, from the algorithm registry), the learning channel's cost
(:mod:`.accounting`) and its alignment with BP (:mod:`.alignment`)."""
