// Browse and checkout through the GraphQL gateway: list a page of products, open one, place an order.
//
//   k6 run load/browse_checkout.js
//   k6 run -e GATEWAY_URL=http://127.0.0.1:8000/graphql -e VUS=20 -e DURATION=1m load/browse_checkout.js
//
// The gateway rate-limits placeOrder per client address (GATEWAY_RATE_LIMIT_PLACE_ORDER, 120/minute by
// default) and every operation per client (GATEWAY_RATE_LIMIT_OPERATION, 600/minute), and k6 is one
// address: start the gateway with higher limits for a load test, e.g.
//   GATEWAY_RATE_LIMIT_PLACE_ORDER=1000000/minute GATEWAY_RATE_LIMIT_OPERATION=1000000/minute task up
// A RATE_LIMITED refusal is counted in `rate_limited`, not as a failure, so a misconfigured run is visible.
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const GATEWAY_URL = __ENV.GATEWAY_URL || 'http://127.0.0.1:8000/graphql';

export const options = {
  scenarios: {
    shoppers: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 10),
      duration: __ENV.DURATION || '30s',
    },
  },
  // What a CI can enforce: exit code 99 when any of these is crossed.
  thresholds: {
    http_req_failed: ['rate<0.01'],                       // transport errors and non-2xx
    'http_req_duration{step:browse}': ['p(95)<300'],
    'http_req_duration{step:checkout}': ['p(95)<800'],
    checks: ['rate>0.99'],
    checkout_failed: ['rate<0.01'],                       // a placeOrder that neither ordered nor said why
  },
};

const checkoutFailed = new Rate('checkout_failed');
const soldOut = new Counter('sold_out');
const rateLimited = new Counter('rate_limited');
const checkoutTime = new Trend('checkout_ms', true);

function graphql(query, variables, step) {
  const response = http.post(GATEWAY_URL, JSON.stringify({ query, variables }), {
    headers: { 'Content-Type': 'application/json' },
    tags: { step },
  });
  let body = null;
  try {
    body = response.json();
  } catch (e) {
    body = null;
  }
  return { response, body };
}

const PRODUCTS = `query($first: Int!) { products(first: $first) { nodes { id name priceCents stockQty } pageInfo { hasNextPage endCursor } } }`;
const PRODUCT = `query($id: ID!) { product(id: $id) { id name priceCents stockQty } }`;
const PLACE_ORDER = `mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status totalCents } errors { code message productId available } } }`;

export default function () {
  let chosen = null;
  group('browse', () => {
    const { response, body } = graphql(PRODUCTS, { first: 20 }, 'browse');
    const ok = check(response, {
      'products: 200': (r) => r.status === 200,
      'products: no errors': () => body !== null && !body.errors,
    });
    if (!ok) return;
    const inStock = body.data.products.nodes.filter((p) => p.stockQty > 0);
    if (inStock.length === 0) return;
    chosen = inStock[Math.floor(Math.random() * inStock.length)];
    const detail = graphql(PRODUCT, { id: chosen.id }, 'browse');
    check(detail.response, { 'product: 200': (r) => r.status === 200 });
  });
  sleep(Math.random() * 0.5);
  if (chosen === null) return;

  group('checkout', () => {
    const key = `k6-${__VU}-${__ITER}-${Date.now()}`;
    const { response, body } = graphql(
      PLACE_ORDER, { input: { items: [{ productId: chosen.id, qty: 1 }], idempotencyKey: key } }, 'checkout');
    checkoutTime.add(response.timings.duration);
    const topLevel = body && body.errors ? body.errors.map((e) => (e.extensions || {}).code) : [];
    if (topLevel.includes('RATE_LIMITED')) {
      rateLimited.add(1);
      return;
    }
    const payload = body && body.data ? body.data.placeOrder : null;
    const errors = payload ? payload.errors : [];
    const ordered = payload !== null && payload.order !== null && errors.length === 0;
    const refusedForStock = errors.length > 0 && errors.every((e) => e.code === 'INSUFFICIENT_STOCK');
    if (refusedForStock) soldOut.add(1);
    checkoutFailed.add(!(ordered || refusedForStock));
    check(response, {
      'placeOrder: 200': (r) => r.status === 200,
      'placeOrder: an order, or a clear INSUFFICIENT_STOCK': () => ordered || refusedForStock,
    });
  });
  sleep(Math.random());
}
