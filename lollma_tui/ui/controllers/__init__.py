"""Plain objects the chat screen composes: the model session, the catalog, the history recorder,
the hardware feed, the context meter. They post messages up to the screen and never touch a
widget; the screen hands what they report down to its widgets."""
