"""Meeting feeds: Meeting Guide JSON, CSV and iCalendar."""
