"""Channel adapters: one module per channel, plus rendering of replies."""

import httpx

# Connections to one provider's API. httpx looks over every pooled connection (a system
# call for each idle one) on each request and each answer, so a pool that kept every
# connection a burst opened made every later send pay for them: keep a few idle ones.
PROVIDER_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=8)
