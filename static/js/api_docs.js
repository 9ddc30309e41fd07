/* The API docs page (/api/docs/, Swagger UI): "Try it out" on a form body (multipart/form-data)
   starts each field at its schema default, or empty.

   Swagger UI fills every form field with a sample generated from its schema, and ignores the
   request examples for forms (swagger-api/swagger-ui#10248): on POST /api/search/image that
   was a random string for the category and merchant slugs, a 1x1 box at 0,0, the first
   gender and the price example in both price fields, so the first "Execute" with just a
   photo answered 400 "Unknown category" (tests/e2e/test_api_docs.py). An empty field is not
   sent. Only form fields are touched: they are the one caller that asks for a sample with
   contentType false and includeWriteOnly (response and JSON examples pass a media type). */
(function () {
  "use strict";
  if (typeof ui === "undefined" || !ui.fn || typeof ui.fn.getSampleSchema !== "function") {
    return;
  }
  const sample = ui.fn.getSampleSchema;
  ui.fn.getSampleSchema = function (schema, contentType, config) {
    if (contentType === false && config && config.includeWriteOnly && schema) {
      const plain = typeof schema.toJS === "function" ? schema.toJS() : schema;
      if (plain.type !== "object" && plain.type !== "array") {
        return plain.default !== undefined ? plain.default : "";
      }
    }
    return sample.apply(this, arguments);
  };
})();
