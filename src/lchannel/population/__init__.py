"""Populations across variants: which runs may train as one population and how each
per-member option is read from their configs (:mod:`.packing`, the :class:`~.packing.PerMember`
protocol).  Above :mod:`lchannel.run` (it packs run configs into one trainer), below
:mod:`lchannel.experiments` (the sweep runner packs a spec's pending runs)."""
