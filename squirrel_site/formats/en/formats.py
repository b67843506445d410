"""English (LANGUAGE_CODE en-us) date formats: ISO days, 24-hour times, the time zone's name where
a moment stands alone (facts of a page, the admin's fields); tables use the short forms. Input
formats stay Django's (ISO first)."""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
YEAR_MONTH_FORMAT = "Y-m"
MONTH_DAY_FORMAT = "m-d"
FIRST_DAY_OF_WEEK = 1  # Monday
