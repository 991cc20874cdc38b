"""The one runtime decision: a crop's query against the gallery (:mod:`.query`), the shortlist,
verification and fused score (:mod:`.match`, :mod:`.decide`), the refinement steps that tell
printings apart (:mod:`.refine`) and the printing model (:mod:`.printing`). Fitted from labelled
data by :mod:`cardid.fit`, which this package never imports."""
