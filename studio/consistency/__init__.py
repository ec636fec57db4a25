"""Character consistency: how far a picture of a character is from its model sheet, measured.

Scorers (studio/consistency/scorers.py) are plugins in tiers: an offline one computed from pixels
(the default, free), and a paid judge that asks a vision-language model. Each declares what it can
see, and every number they give names the scorer that produced it.
"""
