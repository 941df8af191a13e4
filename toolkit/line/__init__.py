"""LINE Messaging API: the limits every sender must respect and the local sandbox."""
