"""Date formats of every page and the admin (settings.FORMAT_MODULE_PATH): the day, 24-hour, in
the configured time zone (settings.TIME_ZONE, SQUIRREL_TIME_ZONE), so that a page and the admin
show the same moment the same way. Django's own English formats are 12-hour ("3:02 p.m.")."""
