"""Card verifiers: challenge-response steps that prove a card holds its secroom key.

One module per card type (``desfire``: MIFARE DESFire EV2/EV3 AES, ``felica_lite``: FeliCa
Lite-S MAC_A), each with its crypto and its commands as pure functions and one small step that
talks to the card through a ``Transmit`` callable (the PC/SC adapter hands its own).
``select.CardVerifier`` chooses the step by the card's ATR and holds the site keys.
"""
