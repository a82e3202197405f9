CREATE TABLE city (id INT NOT NULL, name TEXT, country TEXT);
CREATE TABLE weather (city_id INT, day DATE, temp DOUBLE PRECISION);
INSERT INTO city VALUES (1, 'Oslo', 'NO'), (2, 'Rome', 'IT'), (3, 'Bergen', 'NO');
INSERT INTO weather VALUES (1, '2024-07-01', 21.5), (1, '2024-07-02', 19), (2, '2024-07-01', 31.25), (3, '2024-07-01', 15);
SELECT c.country, count(*) AS days, avg(w.temp) AS avg_temp, max(w.day) AS last_day
FROM weather w JOIN city c ON c.id = w.city_id
GROUP BY c.country ORDER BY c.country;
\x on
SELECT * FROM city WHERE id = 2;
\x off
SELECT name FROM city WHERE name LIKE 'B%';
