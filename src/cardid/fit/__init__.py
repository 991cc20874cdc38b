"""Everything learned from labelled data: the fused score and its thresholds (:mod:`.fusion`), the
printing model's weights and ``p_min`` (:mod:`.printing`), a DB calibrated on simulated views
(:mod:`.calibrate`), the query adapter (:mod:`.adapter`), learning from labelled real photos
(:mod:`.photos`, :mod:`.refit`), card-disjoint folds (:mod:`.folds`) and the outcome of a
labelled photo (:mod:`.outcomes`). It imports the runtime (:mod:`cardid.decision`,
:mod:`cardid.recognize`); the runtime never imports it."""
