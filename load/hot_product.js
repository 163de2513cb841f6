// The hot-product stampede: many buyers, one product, POST /orders at the orders service (or placeOrder at
// the gateway with TARGET=gateway). Every answer must be 201 (sold) or 409 insufficient_stock (sold out):
// never a 5xx, never a timeout. After the run, `stock` in the summary must equal the units not sold.
//
//   k6 run load/hot_product.js
//   k6 run -e STOCK=500 -e RATE=300 -e DURATION=20s load/hot_product.js        # sell out mid-run
//   k6 run -e TARGET=gateway load/hot_product.js                              # through GraphQL
//
// setup() sets the product's stock through inventory (PATCH /products/{id}/stock); PRODUCT_ID picks the
// product (default: the first one listed).
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';

const ORDERS_URL = __ENV.ORDERS_URL || 'http://127.0.0.1:8002';
const INVENTORY_URL = __ENV.INVENTORY_URL || 'http://127.0.0.1:8001';
const GATEWAY_URL = __ENV.GATEWAY_URL || 'http://127.0.0.1:8000/graphql';
const TARGET = __ENV.TARGET || 'orders';
const STOCK = Number(__ENV.STOCK || 100000);

export const options = {
  scenarios: {
    stampede: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 200),      // orders per second offered, whatever the latency
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Number(__ENV.VUS || 50),
      maxVUs: Number(__ENV.MAX_VUS || 200),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.001'],        // 201 and 409 are expected (see responseCallback); anything else fails
    http_req_duration: ['p(95)<500'],
    unexpected_answer: ['rate==0'],
    dropped_iterations: ['count<50'],       // the system kept up with the offered rate
  },
};

http.setResponseCallback(http.expectedStatuses(200, 201, 409));

const sold = new Counter('sold');
const refused = new Counter('sold_out');
const unexpected = new Rate('unexpected_answer');

export function setup() {
  let id = __ENV.PRODUCT_ID;
  if (!id) {
    const products = http.get(`${INVENTORY_URL}/products?limit=1`).json();
    id = products[0].id;
  }
  const response = http.patch(`${INVENTORY_URL}/products/${id}/stock`, JSON.stringify({ stock_qty: STOCK }), {
    headers: { 'Content-Type': 'application/json' },
  });
  if (response.status !== 200) throw new Error(`could not set the stock: ${response.status} ${response.body}`);
  return { id: Number(id) };
}

const MUTATION = `mutation($p: ID!) { placeOrder(input: {items: [{productId: $p, qty: 1}]}) { order { id } errors { code } } }`;

export default function (data) {
  if (TARGET === 'gateway') {
    const response = http.post(GATEWAY_URL, JSON.stringify({ query: MUTATION, variables: { p: String(data.id) } }), {
      headers: { 'Content-Type': 'application/json' },
    });
    const payload = response.status === 200 && response.json().data ? response.json().data.placeOrder : null;
    const ok = payload !== null && payload.order !== null;
    const soldOut = payload !== null && payload.errors.length > 0 && payload.errors[0].code === 'INSUFFICIENT_STOCK';
    if (ok) sold.add(1);
    if (soldOut) refused.add(1);
    unexpected.add(!(ok || soldOut));
    check(response, { 'an order or INSUFFICIENT_STOCK': () => ok || soldOut });
    return;
  }
  const response = http.post(`${ORDERS_URL}/orders`, JSON.stringify({ items: [{ productId: data.id, qty: 1 }] }), {
    headers: { 'Content-Type': 'application/json' },
  });
  if (response.status === 201) sold.add(1);
  if (response.status === 409) refused.add(1);
  unexpected.add(response.status !== 201 && response.status !== 409);
  check(response, { '201 or 409 insufficient_stock': (r) => r.status === 201 || r.status === 409 });
}

export function teardown(data) {
  const product = http.get(`${INVENTORY_URL}/products/${data.id}`).json();
  console.log(`stock of product ${data.id} after the stampede: ${product.stock_qty} (started at ${STOCK}); ` +
    `it must equal ${STOCK} minus the 'sold' counter below`);
}
